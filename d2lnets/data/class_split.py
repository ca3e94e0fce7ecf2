"""Fashion-MNIST cut in two by class, for fine-tuning without a download.

D2L section 14.2, "Fine-Tuning" (9.2 in the first MXNet edition), pretrains
on a large source data set (ImageNet) and fine-tunes on a small target data
set (a few thousand hot-dog photos). Here both come from Fashion-MNIST: the
source task is five of its classes with all their training images, the
target task the other five with only k labelled training images per class (a
k-shot sample), and the target's test set is every test image of its
classes. Labels are renumbered within each task: the target classes
(5, 6, 7, 8, 9) become 0..4, so each task has its own 5-way output layer.

    >>> check_classes(SOURCE_CLASSES, TARGET_CLASSES)  # no class in both tasks
    >>> train_iter, test_iter = load_task(16, TARGET_CLASSES, shots=10, resize=32)
    >>> train_iter.num_examples, test_iter.num_examples
    (50, 5000)
"""
import numpy as np

from .batches import ImageBatches, _check_seed, _positive_int, balanced_subset
from .fashion_mnist import NUM_CLASSES, TEXT_LABELS, load_arrays

SOURCE_CLASSES = (0, 1, 2, 3, 4)  # t-shirt, trouser, pullover, dress, coat
TARGET_CLASSES = (5, 6, 7, 8, 9)  # sandal, shirt, sneaker, bag, ankle boot


def select_classes(images, labels, classes):
    """The examples whose label is in `classes`, each label replaced by its
    position in `classes`.

    Parameters
    ----------
    images, labels : numpy.ndarray
        Images (N, ...) and their labels (N,), as `load_arrays` gives them.
    classes : sequence of int
        The original labels to keep, in the order of the new labels.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The kept images in their original order, and their new labels
        (uint8, 0 to ``len(classes) - 1``).
    """
    keep = np.isin(labels, classes)
    kept = labels[keep]
    new_labels = np.zeros(len(kept), dtype=np.uint8)
    for new, old in enumerate(classes):
        new_labels[kept == old] = new
    return images[keep], new_labels


def k_shot_indices(labels, shots, seed=0):
    """Indices of `shots` examples of every class in `labels`, drawn at random
    with `seed` (the same seed, the same sample), sorted.

    Raises ValueError, in one line, when `shots` is not a positive whole
    number or is more than the smallest class holds.
    """
    shots = _positive_int(shots, 'shots (images per class)')
    classes, counts = np.unique(labels, return_counts=True)
    if shots > counts.min():
        raise ValueError(f'{shots} shots (images per class) are more than the smallest class '
                         f'has ({counts.min()}); give 1 to {counts.min()}')
    return balanced_subset(labels, shots * len(classes), seed)


def check_task(classes, name='task'):
    """Refuse a `name` task whose classes are not Fashion-MNIST labels or
    fewer than two different ones."""
    if len(set(classes)) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f'the {name} classes {tuple(classes)} must be two or more different '
                         f'classes')
    if not all(isinstance(c, (int, np.integer)) and 0 <= c < NUM_CLASSES for c in classes):
        raise ValueError(f'the {name} classes {tuple(classes)} must be Fashion-MNIST labels, '
                         f'0 to {NUM_CLASSES - 1}')


def check_classes(source_classes, target_classes):
    """Refuse tasks that `check_task` refuses, or classes in both tasks (a
    target image seen in pretraining)."""
    check_task(source_classes, 'source')
    check_task(target_classes, 'target')
    shared = sorted(set(source_classes) & set(target_classes))
    if shared:
        raise ValueError(f'classes {shared} are in both the source and the target task; '
                         f'give each class to one task only')


def load_task(batch_size, classes, shots=None, seed=0, resize=None, ctx=None,
              num_train=None, num_test=None, root=None, download=True):
    """(train_iter, test_iter) over the Fashion-MNIST classes `classes`, their
    labels renumbered 0, 1, ... in that order: a source task of every
    training image, or with `shots` a target task of `shots` per class.

    Parameters
    ----------
    batch_size : int
    classes : sequence of int
        Fashion-MNIST labels (0-9), two or more.
    shots : int, optional
        Labelled training images per class (a k-shot sample; default: all).
    seed : int
        Draws the k-shot sample and the subsets, and shuffles the training set.
    resize, ctx, root, download
        As in `load_data_fashion_mnist`.
    num_train, num_test : int, optional
        Class-balanced subsets of these sizes, for quick runs (default: every
        image); `num_train` not with `shots`.

    Returns
    -------
    (ImageBatches, ImageBatches)
        The training set shuffled (each epoch's order drawn from `seed`), the
        test set in order.
    """
    check_task(classes)
    _check_seed(seed)
    if shots is not None and num_train is not None:
        raise ValueError('give the number of images per class (shots) or the size of the '
                         'training subset (num_train), not both')
    arrays = load_arrays(root=root, download=download)
    train_images, train_labels = select_classes(*arrays['train'], classes)
    if shots is not None:
        index = k_shot_indices(train_labels, shots, seed)
    elif num_train is not None:
        index = balanced_subset(train_labels, num_train, seed)
    else:
        index = slice(None)
    test_images, test_labels = select_classes(*arrays['test'], classes)
    test_index = slice(None) if num_test is None else balanced_subset(test_labels, num_test, seed)
    return (ImageBatches(train_images[index], train_labels[index], batch_size, shuffle=True,
                         resize=resize, ctx=ctx, seed=seed),
            ImageBatches(test_images[test_index], test_labels[test_index], batch_size,
                         resize=resize, ctx=ctx, seed=seed))


def class_names(classes):
    """The names of the Fashion-MNIST labels `classes`, in order."""
    return tuple(TEXT_LABELS[c] for c in classes)
