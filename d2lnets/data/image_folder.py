"""Folders of images, one sub-folder a class (`root/class_name/*.jpg`), as the
book's fine-tuning chapter reads its hot-dog photos (D2L section 14.2), and a
deterministic split of such a folder into train and val.

    python -m d2lnets.data.image_folder SRC DST [--val 0.1] [--seed 0] [--link]

writes DST/train/<class>/..., DST/val/<class>/... and DST/classes.txt (the
class index: line i names class i), taking the same images for val whenever
the same seed is given.
"""
import argparse
import os
import shutil
import sys

import mxnet as mx
import numpy as np
from mxnet import gluon

from .._messages import first_line

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
CLASS_INDEX = 'classes.txt'


class ImageFolderError(ValueError):
    """A folder that holds no images to use, or an image that cannot be read."""


def list_images(root):
    """(class names, [(path, class index)]): classes are the sub-folders of
    `root` in sorted order; images are their files with an image extension."""
    if not os.path.isdir(root):
        raise ImageFolderError(f'{root} is not a folder; give the folder that holds one '
                               f'sub-folder of images per class')
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    items = [(os.path.join(root, name, f), i) for i, name in enumerate(classes)
             for f in sorted(os.listdir(os.path.join(root, name)))
             if f.lower().endswith(IMAGE_EXTENSIONS)]
    if not items:
        raise ImageFolderError(f'{root} holds no images: expected {root}/<class name>/<image> '
                               f'with extensions {", ".join(IMAGE_EXTENSIONS)}')
    return classes, items


def split_image_folder(source, target, val_fraction=0.1, seed=0, link=False):
    """Split `source` into `target`/train and `target`/val, class by class.

    Each class's files, in sorted order, are shuffled with `seed`; the first
    round(n x val_fraction) go to val (at least one when a class has two or
    more images). Files are copied, or hard-linked with `link=True`. Returns
    {'train': count, 'val': count}.
    """
    if not 0 < val_fraction < 1:
        raise ImageFolderError(f'val fraction {val_fraction} must lie between 0 and 1')
    if os.path.exists(target) and os.listdir(target):
        raise ImageFolderError(f'{target} exists and is not empty; give a new folder')
    classes, items = list_images(source)
    rng = np.random.default_rng(seed)
    counts = {'train': 0, 'val': 0}
    for index, name in enumerate(classes):
        files = [path for path, label in items if label == index]
        order = rng.permutation(len(files))
        num_val = max(1, round(len(files) * val_fraction)) if len(files) > 1 else 0
        for rank, position in enumerate(order):
            split = 'val' if rank < num_val else 'train'
            destination = os.path.join(target, split, name)
            os.makedirs(destination, exist_ok=True)
            source_file = files[position]
            copy = os.link if link else shutil.copy2
            copy(source_file, os.path.join(destination, os.path.basename(source_file)))
            counts[split] += 1
    write_class_index(os.path.join(target, CLASS_INDEX), classes)
    return counts


def write_class_index(path, classes):
    with open(path, 'w') as f:
        f.writelines(f'{name}\n' for name in classes)


def read_class_index(path):
    """The class names of a class index file, class i on line i."""
    try:
        with open(path) as f:
            names = [line.rstrip('\n') for line in f if line.strip()]
    except OSError as err:
        raise ImageFolderError(f'cannot read the class index {path} ({err.strerror})') from None
    if not names:
        raise ImageFolderError(f'the class index {path} names no class')
    return names


class ImageFolderDataset(gluon.data.Dataset):
    """(image, label) pairs of a class folder: images as uint8 HWC RGB NDArrays.

    An image that cannot be decoded raises `ImageFolderError` naming the file.
    """

    def __init__(self, root, transform=None):
        self.root = root
        self.classes, self.items = list_images(root)
        self._transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        path, label = self.items[index]
        image = read_image(path)
        if self._transform is not None:
            image = self._transform(image)
        return image, label


def read_image(path):
    """An image file as a uint8 (H, W, 3) RGB NDArray."""
    try:
        return mx.image.imread(path, flag=1)
    except mx.base.MXNetError as err:
        raise ImageFolderError(f'{path} cannot be read as an image ({first_line(err)}); '
                               f'remove or replace it') from None


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m d2lnets.data.image_folder',
                                     description='Split a folder of class sub-folders into '
                                                 'train and val, and write the class index.')
    parser.add_argument('source', help='folder with one sub-folder of images per class')
    parser.add_argument('target', help='new folder for train/, val/ and classes.txt')
    parser.add_argument('--val', type=float, default=0.1,
                        help='fraction of each class for val (default: %(default)s, i.e. 9:1)')
    parser.add_argument('--seed', type=int, default=0, help='seeds the split (default: 0)')
    parser.add_argument('--link', action='store_true',
                        help='hard-link the files instead of copying them')
    args = parser.parse_args(argv)
    try:
        counts = split_image_folder(args.source, args.target, args.val, args.seed, args.link)
    except (ImageFolderError, OSError) as err:
        sys.exit(f'{parser.prog}: error: {err}')
    train, val = (os.path.join(args.target, split) for split in ('train', 'val'))
    print(f'{counts["train"]} images in {train}, {counts["val"]} in {val}; '
          f'class index {os.path.join(args.target, CLASS_INDEX)}')


if __name__ == '__main__':
    main()
