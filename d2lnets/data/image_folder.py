"""Folders of images, one sub-folder a class (`root/class_name/*.jpg`), as the
book's fine-tuning chapter reads its hot-dog photos (D2L section 14.2), and a
deterministic split of such a folder into train and val.

    python -m d2lnets.data.image_folder SRC DST [--val 0.1] [--seed 0] [--link]

writes DST/train/<class>/..., DST/val/<class>/... and DST/classes.txt (the
class index: line i names class i), taking the same images for val whenever
the same seed is given.

Nothing is trained on silently that should not be: a folder with fewer than
two classes, or a class without images, is refused; an image file that is
empty, cut off or not an image at all (checked from its first and last bytes,
without decoding) is skipped, and the count of skipped files is printed.
"""
import os
import shutil
import sys

import mxnet as mx
import numpy as np
from mxnet import gluon

from .._args import OneLineParser, random_seed
from .._messages import first_line

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
CLASS_INDEX = 'classes.txt'


PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'IEND\xaeB`\x82'
JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
CHECK_BYTES = 64
MAX_DECODED_VALUES = 2 ** 31 - 1  # the most elements this MXNet build's arrays hold


class ImageFolderError(ValueError):
    """A folder that holds no images to use, or an image that cannot be read."""


def image_problem(path):
    """Why the file at `path` is not a whole JPEG, PNG or BMP image, or None.

    Only its first and last bytes are read: a JPEG must start with SOI and
    end with EOI (trailing zero bytes or newlines allowed), a PNG start with
    its signature and end with the IEND chunk, a BMP be as long as its header
    says. This catches empty, cut-off and mislabelled files, not damage inside.
    """
    try:
        size = os.path.getsize(path)
        with open(path, 'rb') as f:
            head = f.read(CHECK_BYTES)
            f.seek(max(0, size - CHECK_BYTES))
            tail = f.read()
    except OSError as err:
        return f'cannot be opened ({err.strerror})'
    if size == 0:
        return 'is empty (0 bytes)'
    if head.startswith(JPEG_START):
        whole = tail.rstrip(b'\x00\r\n').endswith(JPEG_END)
        return None if whole else 'is a cut-off JPEG (no end-of-image marker)'
    if head.startswith(PNG_SIGNATURE):
        if not tail.endswith(PNG_END):
            return 'is a cut-off PNG (no IEND chunk)'
        width, height = (int.from_bytes(head[i:i + 4], 'big') for i in (16, 20))
        if head[12:16] != b'IHDR' or not 0 < width * height * 3 < MAX_DECODED_VALUES:
            return f'is a damaged PNG (header says {width}x{height})'
        return None
    if head.startswith(b'BM') and len(head) >= 6:
        promised = int.from_bytes(head[2:6], 'little')
        return None if size >= promised else f'is a cut-off BMP ({size} of {promised} bytes)'
    return 'is not a JPEG, PNG or BMP image'


def list_images(root):
    """(class names, [(path, class index)], [(path, problem)] skipped).

    Classes are the sub-folders of `root` in sorted order; images are their
    files with an image extension, less those `image_problem` skips. Raises
    `ImageFolderError` when there are fewer than two classes or a class has
    no usable image: a network cannot learn to tell such classes apart, and
    would report a perfect accuracy on one class.
    """
    if not os.path.isdir(root):
        raise ImageFolderError(f'{root} is not a folder; give the folder that holds one '
                               f'sub-folder of images per class')
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    items, skipped = [], []
    for index, name in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(root, name))
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        for path in (os.path.join(root, name, f) for f in files):
            problem = image_problem(path)
            if problem:
                skipped.append((path, problem))
            else:
                items.append((path, index))
    if not items:
        raise ImageFolderError(f'{root} holds no usable images: expected '
                               f'{root}/<class name>/<image> with extensions '
                               f'{", ".join(IMAGE_EXTENSIONS)}{_skipped_note(skipped)}')
    empty = [name for index, name in enumerate(classes)
             if not any(label == index for _, label in items)]
    if empty:
        raise ImageFolderError(f'class {empty[0]} in {root} has no usable image'
                               f'{_skipped_note(skipped)}; add images or remove the folder '
                               f'{os.path.join(root, empty[0])}')
    if len(classes) < 2:
        raise ImageFolderError(f'{root} holds one class ({classes[0]}): there is nothing to '
                               f'tell apart; give one sub-folder per class, at least two')
    return classes, items, skipped


def _skipped_note(skipped):
    return f' ({len(skipped)} unreadable skipped)' if skipped else ''


def skipped_report(root, skipped):
    """One line on the files `list_images` skipped in `root`, or None."""
    if not skipped:
        return None
    path, problem = skipped[0]
    more = f', and {len(skipped) - 1} more' if len(skipped) > 1 else ''
    return (f'skipped {len(skipped)} unreadable image file(s) in {root}: '
            f'{path} {problem}{more}; fix or remove them')


def split_image_folder(source, target, val_fraction=0.1, seed=0, link=False):
    """Split `source` into `target`/train and `target`/val, class by class.

    Each class's files, in sorted order, are shuffled with `seed`; the first
    round(n x val_fraction) go to val (at least one). Every class needs two
    images or more, so that train and val hold the same classes. Unreadable
    files are left out (see `list_images`). Files are copied, or hard-linked
    with `link=True`. Returns {'train': count, 'val': count, 'skipped':
    [(path, problem)]}.
    """
    if not 0 < val_fraction < 1:
        raise ImageFolderError(f'val fraction {val_fraction} must lie between 0 and 1')
    if os.path.exists(target) and not os.path.isdir(target):
        raise ImageFolderError(f'{target} is a file; give a new folder')
    if os.path.exists(target) and os.listdir(target):
        raise ImageFolderError(f'{target} exists and is not empty; give a new folder')
    classes, items, skipped = list_images(source)
    for index, name in enumerate(classes):
        count = sum(1 for _, label in items if label == index)
        if count < 2:
            raise ImageFolderError(f'class {name} in {source} has {count} usable image; '
                                   f'a split needs at least 2 per class (one for val)')
    rng = np.random.default_rng(seed)
    counts = {'train': 0, 'val': 0}
    for index, name in enumerate(classes):
        files = [path for path, label in items if label == index]
        order = rng.permutation(len(files))
        num_val = max(1, round(len(files) * val_fraction))
        for rank, position in enumerate(order):
            split = 'val' if rank < num_val else 'train'
            destination = os.path.join(target, split, name)
            os.makedirs(destination, exist_ok=True)
            source_file = files[position]
            copy = os.link if link else shutil.copy2
            copy(source_file, os.path.join(destination, os.path.basename(source_file)))
            counts[split] += 1
    write_class_index(os.path.join(target, CLASS_INDEX), classes)
    return dict(counts, skipped=skipped)


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

    Files that are not whole images are left out and listed in `skipped`
    (see `list_images`). An image that cannot be decoded raises
    `ImageFolderError` naming the file.
    """

    def __init__(self, root, transform=None):
        self.root = root
        self.classes, self.items, self.skipped = list_images(root)
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
    """An image file as a uint8 (H, W, 3) RGB NDArray; `ImageFolderError`
    for a file that `image_problem` finds fault with or that does not decode."""
    problem = image_problem(path)
    if problem:
        raise ImageFolderError(f'{path} {problem}; remove or replace it')
    try:
        image = mx.image.imread(path, flag=1)
        image.wait_to_read()  # decoding errors surface here, not later in a batch
        return image
    except mx.base.MXNetError as err:
        raise ImageFolderError(f'{path} cannot be read as an image ({first_line(err)}); '
                               f'remove or replace it') from None


def main(argv=None):
    parser = OneLineParser(prog='python -m d2lnets.data.image_folder',
                                     description='Split a folder of class sub-folders into '
                                                 'train and val, and write the class index.')
    parser.add_argument('source', help='folder with one sub-folder of images per class')
    parser.add_argument('target', help='new folder for train/, val/ and classes.txt')
    parser.add_argument('--val', type=float, default=0.1,
                        help='fraction of each class for val (default: %(default)s, i.e. 9:1)')
    parser.add_argument('--seed', type=random_seed, default=0, help='seeds the split (default: 0)')
    parser.add_argument('--link', action='store_true',
                        help='hard-link the files instead of copying them')
    args = parser.parse_args(argv)
    try:
        counts = split_image_folder(args.source, args.target, args.val, args.seed, args.link)
    except ImageFolderError as err:
        sys.exit(f'{parser.prog}: error: {err}')
    except OSError as err:
        sys.exit(f'{parser.prog}: error: cannot write {args.target} ({err.strerror}: '
                 f'{err.filename}); give a folder you can write')
    note = skipped_report(args.source, counts['skipped'])
    if note:
        print(note)
    train, val = (os.path.join(args.target, split) for split in ('train', 'val'))
    print(f'{counts["train"]} images in {train}, {counts["val"]} in {val}; '
          f'class index {os.path.join(args.target, CLASS_INDEX)}')


if __name__ == '__main__':
    main()
