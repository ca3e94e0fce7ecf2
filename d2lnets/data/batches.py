"""Mini-batches of Fashion-MNIST for the chapters, as the book's
`load_data_fashion_mnist(batch_size, resize=None)` (D2L section 4.2) serves them.

The whole data set sits in memory as uint8 (55 MB). Each batch is gathered with
one NumPy index, copied to the training context, scaled to [0, 1] and, when
asked, resized there as a whole batch by bilinear interpolation -- not image by
image in Python, which starves the network at 224x224.
"""
import math

import mxnet as mx
import numpy as np
from mxnet import nd

from .._args import MAX_SEED
from .fashion_mnist import MIRRORS, load_arrays

MAX_RESIZE = 1024  # one batch of 128 images of 1024x1024 float32 is 512 MB already


class ImageBatches:
    """Iterate over (X, y) mini-batches of uint8 images held in memory.

    Images are uint8, (N, H, W) grey or (N, H, W, C) colour. X is float32 of
    shape (batch, C, H, W) in [0, 1] on `ctx` (C = 1 for grey), resized to
    `resize` x `resize` when given; y is float32 of shape (batch,) on `ctx`.
    The last batch keeps what is left over, as the book's DataLoader does.
    With `shuffle`, epoch e's order is drawn from (seed, e), so a run resumed
    at epoch e (`set_epoch(e)`) sees the batches an uninterrupted run would;
    each pass over the batches counts as the next epoch.
    """

    def __init__(self, images, labels, batch_size, shuffle=False, resize=None,
                 ctx=None, seed=None):
        if len(images) != len(labels):
            raise ValueError(f'{len(images)} images but {len(labels)} labels')
        self.images, self.labels = images, labels
        self.batch_size = _positive_int(batch_size, 'batch_size')
        self.resize = None if resize is None else _positive_int(resize, 'resize')
        if self.resize is not None and self.resize > MAX_RESIZE:
            raise ValueError(f'resize {self.resize} is above {MAX_RESIZE}, the largest side '
                             f'batches are resized to')
        self.shuffle = shuffle
        self.ctx = ctx or mx.cpu()
        self.seed = np.random.SeedSequence().entropy if seed is None else seed
        self._next_epoch = 1

    def __len__(self):
        return math.ceil(len(self.labels) / self.batch_size)

    @property
    def num_examples(self):
        return len(self.labels)

    def set_epoch(self, epoch):
        """Make the next pass over the batches epoch `epoch` (counted from 1)."""
        self._next_epoch = epoch

    def __iter__(self):
        epoch, self._next_epoch = self._next_epoch, self._next_epoch + 1
        order = (np.random.default_rng([self.seed, epoch]).permutation(len(self.labels))
                 if self.shuffle else np.arange(len(self.labels)))
        for start in range(0, len(order), self.batch_size):
            index = np.sort(order[start:start + self.batch_size])
            yield self._batch(index)

    def _batch(self, index):
        raw = nd.array(self.images[index], ctx=self.ctx, dtype='uint8').astype('float32') / 255
        X = raw.transpose((0, 3, 1, 2)) if raw.ndim == 4 else raw.expand_dims(axis=1)
        if self.resize is not None and X.shape[2:] != (self.resize, self.resize):
            X = nd.contrib.BilinearResize2D(X, height=self.resize, width=self.resize,
                                            align_corners=False)
        y = nd.array(self.labels[index], ctx=self.ctx, dtype='float32')
        return X, y


def balanced_subset(labels, size, seed=0):
    """Indices of `size` examples with the classes as equal as they can be.

    Each class gives `size // num_classes` examples (the first `size % num_classes`
    classes one more), drawn at random with `seed`; the indices come sorted.
    """
    classes = np.unique(labels)
    size = _positive_int(size, 'subset size')
    counts = np.bincount(labels)[classes]
    per_class = np.full(len(classes), size // len(classes))
    per_class[:size % len(classes)] += 1
    if size > len(labels) or np.any(per_class > counts):
        raise ValueError(f'a class-balanced subset of {size} needs up to {per_class.max()} '
                         f'examples per class; the smallest class has {counts.min()} '
                         f'(there are {len(labels)} in all)')
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), n, replace=False)
             for c, n in zip(classes, per_class, strict=True)]
    return np.sort(np.concatenate(picks))


def load_data_fashion_mnist(batch_size, resize=None, root=None, num_train=None,
                            num_test=None, ctx=None, seed=0, num_parts=1, part_index=0,
                            download=True, mirrors=MIRRORS):
    """Return (train_iter, test_iter) over Fashion-MNIST (D2L section 4.2).

    Parameters
    ----------
    batch_size : int
    resize : int, optional
        Side length to resize the 28x28 images to, batch-wise on `ctx`.
    root : str, optional
        Directory holding the four .gz files (see `d2lnets.data.fashion_mnist`).
    num_train, num_test : int, optional
        Class-balanced subsets of these sizes, for quick runs.
    ctx : mx.Context, optional
        Where batches are built and resized; the training context.
    seed : int
        Seeds the subsets and the training shuffle.
    num_parts, part_index : int
        Train on part `part_index` of `num_parts` equal shards of the training
        set (after the subset), one per worker of a distributed job.
    """
    _check_seed(seed)
    splits = subsets_and_shard(load_arrays(root=root, download=download, mirrors=mirrors),
                               num_train, num_test, seed, num_parts, part_index)
    return tuple(ImageBatches(*splits[split], batch_size, shuffle=split == 'train',
                              resize=resize, ctx=ctx, seed=seed) for split in ('train', 'test'))


def subsets_and_shard(arrays, num_train, num_test, seed, num_parts=1, part_index=0):
    """{'train': (images, labels), 'test': ...} cut to class-balanced subsets of
    `num_train` and `num_test` (when given), the training set then cut to part
    `part_index` of `num_parts` equal shards."""
    splits = {}
    for split, size in (('train', num_train), ('test', num_test)):
        images, labels = arrays[split]
        if size is not None:
            index = balanced_subset(labels, size, seed)
            images, labels = images[index], labels[index]
        if split == 'train' and num_parts > 1:
            index = shard_indices(len(labels), num_parts, part_index)
            images, labels = images[index], labels[index]
        splits[split] = images, labels
    return splits


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')
    return int(value)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed <= MAX_SEED:
        raise ValueError(f'seed must be a whole number in 0..{MAX_SEED}, got {seed!r}')


def load_data_cifar10(batch_size, resize=None, root=None, crop_scale=(0.08, 1.0),
                      num_train=None, num_test=None, num_parts=1, part_index=0,
                      num_workers=2, seed=0, download=True):
    """Return (train_iter, test_iter) over CIFAR-10 (D2L section 14.1).

    Training images get a random resized crop (area `crop_scale` of the
    image, resized to `resize` or 32) and a random horizontal flip, per image
    in `num_workers` loader processes; test images are only resized. X is
    float32 (batch, 3, H, W) in [0, 1] on the CPU. `num_train`, `num_test`,
    `num_parts` and `part_index` take class-balanced subsets and shards as in
    `load_data_fashion_mnist`.
    """
    from mxnet import gluon
    from mxnet.gluon.data.vision import transforms

    from .cifar10 import load_cifar10
    _check_seed(seed)
    _positive_int(batch_size, 'batch_size')
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f'num_workers must be 0 (load in this process) or more, '
                         f'got {num_workers!r}')
    splits = subsets_and_shard(load_cifar10(root=root, download=download), num_train,
                               num_test, seed, num_parts, part_index)
    size = resize or 32
    augment = transforms.Compose([transforms.RandomResizedCrop(size, scale=crop_scale),
                                  transforms.RandomFlipLeftRight(), transforms.ToTensor()])
    plain = transforms.Compose(([transforms.Resize(size)] if size != 32 else [])
                               + [transforms.ToTensor()])
    mx.random.seed(seed)
    iters = []
    for (images, labels), transform, shuffle in ((splits['train'], augment, True),
                                                 (splits['test'], plain, False)):
        dataset = gluon.data.ArrayDataset(nd.array(images, dtype='uint8'), labels)
        loader = gluon.data.DataLoader(dataset.transform_first(transform), batch_size,
                                       shuffle=shuffle, num_workers=num_workers)
        loader.num_examples = len(dataset)  # as ImageBatches has it
        iters.append(loader)
    return tuple(iters)

def shard_indices(num_examples, num_parts, part_index):
    """Indices of part `part_index` of `num_parts` equal, interleaved parts.

    Every part has `num_examples // num_parts` examples (the few left over are
    dropped), so every worker runs the same number of batches: in `dist_sync`
    a worker with one batch more would wait for the others forever.
    """
    if not 0 <= part_index < num_parts:
        raise ValueError(f'part {part_index} of {num_parts} does not exist')
    per_part = num_examples // num_parts
    if per_part == 0:
        raise ValueError(f'{num_examples} examples cannot be shared by {num_parts} workers')
    return np.arange(part_index, per_part * num_parts, num_parts)
