"""class_split on a small stand-in of Fashion-MNIST (conftest.py's
fashion_stand_in): what load_task passes on, its defaults and its messages
(mutation testing, docs/results.md; the tests on the real data are in
test_finetune_fashion.py)."""
import mxnet as mx
import numpy as np
import pytest

from d2lnets.data.batches import balanced_subset
from d2lnets.data.class_split import (check_task, class_names, k_shot_indices, load_task,
                                      select_classes)
from d2lnets.data.sources import DataNotFoundError

CLASSES = (5, 7, 9)


def labels_served(batches):
    return np.concatenate([y.asnumpy() for _, y in batches]).astype(int)


def test_load_task_reads_the_root_and_passes_its_options_to_both_iterators(fashion_stand_in):
    root, arrays = fashion_stand_in
    train, test = load_task(4, CLASSES, seed=3, resize=32, ctx=mx.cpu(1), root=str(root))
    images, labels = select_classes(arrays[('train', 'images')], arrays[('train', 'labels')],
                                    CLASSES)
    np.testing.assert_array_equal(train.images, images)
    assert train.shuffle and not test.shuffle and train.seed == 3
    order = np.random.default_rng([3, 1]).permutation(12)
    expected = np.concatenate([np.sort(order[i:i + 4]) for i in range(0, 12, 4)])
    np.testing.assert_array_equal(labels_served(train), labels[expected])
    test_images, test_labels = select_classes(arrays[('test', 'images')],
                                              arrays[('test', 'labels')], CLASSES)
    np.testing.assert_array_equal(test.images, test_images)
    np.testing.assert_array_equal(labels_served(test), test_labels)
    for batches in (train, test):
        X, y = next(iter(batches))
        assert X.shape == (4, 1, 32, 32) and X.context == y.context == mx.cpu(1)


def test_load_task_subsets_are_drawn_with_the_seed_zero_by_default(fashion_stand_in):
    root, arrays = fashion_stand_in
    images, labels = select_classes(arrays[('train', 'images')], arrays[('train', 'labels')],
                                    CLASSES)
    test_images, test_labels = select_classes(arrays[('test', 'images')],
                                              arrays[('test', 'labels')], CLASSES)
    for seed in (2, None):
        kwargs = {} if seed is None else dict(seed=seed)
        train, test = load_task(4, CLASSES, num_train=6, num_test=3, root=str(root), **kwargs)
        np.testing.assert_array_equal(train.images,
                                      images[balanced_subset(labels, 6, seed or 0)])
        np.testing.assert_array_equal(test.images,
                                      test_images[balanced_subset(test_labels, 3, seed or 0)])
        assert train.seed == (seed or 0)
        shots, _ = load_task(4, CLASSES, shots=2, root=str(root), **kwargs)
        np.testing.assert_array_equal(shots.images,
                                      images[k_shot_indices(labels, 2, seed or 0)])
    np.testing.assert_array_equal(k_shot_indices(labels, 2), k_shot_indices(labels, 2, 0))


def test_load_task_passes_root_and_download_on_and_downloads_by_default(fashion_stand_in,
                                                                       monkeypatch):
    root, arrays = fashion_stand_in
    from d2lnets.data import class_split
    calls, load_arrays = [], class_split.load_arrays

    def spy(**kwargs):
        calls.append(kwargs)
        return load_arrays(root=str(root), download=False)

    monkeypatch.setattr(class_split, 'load_arrays', spy)
    load_task(4, CLASSES, root='/elsewhere', download=False)
    load_task(4, CLASSES)
    assert calls == [dict(root='/elsewhere', download=False), dict(root=None, download=True)]


def test_shots_and_num_train_exclude_each_other_in_one_line(fashion_stand_in):
    root, _ = fashion_stand_in
    with pytest.raises(ValueError) as info:
        load_task(4, CLASSES, shots=2, num_train=6, root=str(root))
    assert str(info.value) == ('give the number of images per class (shots) or the size of '
                               'the training subset (num_train), not both')
    assert load_task(4, CLASSES, num_train=6, root=str(root))[0].num_examples == 6


def test_a_task_of_one_class_is_named_task_by_default():
    with pytest.raises(ValueError) as info:
        check_task((3,))
    assert str(info.value) == 'the task classes (3,) must be two or more different classes'


def test_class_names():
    assert class_names((5, 7, 0)) == ('sandal', 'sneaker', 't-shirt')
