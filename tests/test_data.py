"""Mini-batches: shapes, order, subsets and the batch-wise resize."""
import os

import mxnet as mx
import numpy as np
import pytest

from d2lnets.data.batches import (ImageBatches, balanced_subset, load_data_fashion_mnist,
                                  shard_indices, subsets_and_shard)
from d2lnets.data.sources import DataNotFoundError


def bilinear_resize_float64(images, size):
    """Half-pixel bilinear resize (OpenCV's and transforms.Resize's convention), in float64."""
    n, h, w = images.shape

    def taps(src_len):
        pos = np.maximum((np.arange(size) + 0.5) * src_len / size - 0.5, 0)
        lo = np.minimum(np.floor(pos).astype(int), src_len - 1)
        hi = np.minimum(lo + 1, src_len - 1)
        return lo, hi, pos - lo

    r0, r1, rw = taps(h)
    c0, c1, cw = taps(w)
    x = images.astype(np.float64)
    rows = x[:, r0, :] * (1 - rw)[None, :, None] + x[:, r1, :] * rw[None, :, None]
    return rows[:, :, c0] * (1 - cw) + rows[:, :, c1] * cw


@pytest.fixture(scope='module')
def small():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (37, 28, 28), dtype=np.uint8), np.arange(37, dtype=np.uint8) % 10


def test_batches_shape_range_and_last_batch(small):
    images, labels = small
    batches = list(ImageBatches(images, labels, batch_size=16))
    assert [X.shape for X, _ in batches] == [(16, 1, 28, 28), (16, 1, 28, 28), (5, 1, 28, 28)]
    X, y = batches[0]
    assert X.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_allclose(X.asnumpy()[:, 0], images[:16] / 255, rtol=1e-6)
    np.testing.assert_array_equal(y.asnumpy(), labels[:16])
    assert len(ImageBatches(images, labels, batch_size=16)) == 3


def test_shuffle_visits_every_example_once_per_epoch(small):
    images, labels = small
    batches = ImageBatches(images, labels, batch_size=8, shuffle=True, seed=1)
    firsts = []
    for _ in range(2):
        seen = np.concatenate([X.asnumpy()[:, 0, 0, 0] for X, _ in batches])
        assert sorted(seen) == sorted(images[:, 0, 0] / np.float32(255))
        firsts.append(seen)
    assert not np.array_equal(firsts[0], firsts[1])


def test_resize_matches_a_float64_bilinear_reference(small):
    images, labels = small
    X, _ = next(iter(ImageBatches(images, labels, batch_size=4, resize=224)))
    assert X.shape == (4, 1, 224, 224)
    expected = bilinear_resize_float64(images[:4], 224) / 255
    np.testing.assert_allclose(X.asnumpy()[:, 0], expected, atol=1e-5)


def test_resize_agrees_with_the_books_per_image_transform(small):
    """The book resizes each uint8 image with transforms.Resize: same up to rounding."""
    images, labels = small
    X, _ = next(iter(ImageBatches(images, labels, batch_size=4, resize=96)))
    resize = mx.gluon.data.vision.transforms.Resize(96)
    for i in range(4):
        book = resize(mx.nd.array(images[i][:, :, None], dtype='uint8')).asnumpy()[:, :, 0]
        np.testing.assert_allclose(X[i, 0].asnumpy() * 255, book, atol=1.0)


@pytest.mark.parametrize('bad', [0, -3, 2.5, None, True])
def test_bad_batch_size_is_refused(small, bad):
    with pytest.raises(ValueError, match='batch_size must be a positive integer'):
        ImageBatches(*small, batch_size=bad)


def test_balanced_subset():
    labels = np.repeat(np.arange(10), 50)
    index = balanced_subset(labels, 103, seed=3)
    assert len(index) == len(set(index)) == 103
    counts = np.bincount(labels[index])
    assert counts.tolist() == [11, 11, 11] + [10] * 7
    np.testing.assert_array_equal(index, balanced_subset(labels, 103, seed=3))
    assert not np.array_equal(index, balanced_subset(labels, 103, seed=4))
    with pytest.raises(ValueError, match='per class'):
        balanced_subset(labels, 501)
    with pytest.raises(ValueError, match='positive'):
        balanced_subset(labels, 0)


def test_load_data_fashion_mnist_subsets_of_the_real_data():
    train_iter, test_iter = load_data_fashion_mnist(64, resize=32, num_train=300, num_test=100)
    assert train_iter.num_examples == 300 and test_iter.num_examples == 100
    assert len(train_iter) == 5
    X, y = next(iter(test_iter))
    assert X.shape == (64, 1, 32, 32)
    assert 0 <= X.min().asscalar() and X.max().asscalar() <= 1
    assert np.bincount(test_iter.labels).tolist() == [10] * 10


# Pinned down by mutation testing (docs/results.md, "Mutation testing") ---------

def test_resize_makes_non_square_images_square_even_at_their_width():
    """resize x resize as documented, also when `resize` equals the width (20 x 28
    images at resize=28 were left 20 x 28)."""
    images = np.random.default_rng(1).integers(0, 256, (3, 20, 28), dtype=np.uint8)
    for size in (28, 20):
        X, _ = next(iter(ImageBatches(images, np.zeros(3), 3, resize=size)))
        assert X.shape == (3, 1, size, size)
        np.testing.assert_allclose(X.asnumpy()[:, 0],
                                   bilinear_resize_float64(images, size) / 255, atol=1e-5)


def test_colour_images_become_channels_first():
    images = np.random.default_rng(2).integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    X, y = next(iter(ImageBatches(images, np.arange(5), 5)))
    assert X.shape == (5, 3, 6, 7)
    np.testing.assert_allclose(X.asnumpy(), images.transpose(0, 3, 1, 2) / 255, rtol=1e-6)


def test_batches_and_labels_are_built_on_the_given_context(small):
    X, y = next(iter(ImageBatches(*small, 4, ctx=mx.cpu(1), resize=32)))
    assert X.context == mx.cpu(1) and y.context == mx.cpu(1)
    batches = ImageBatches(*small, 4)
    assert batches.ctx == mx.cpu()
    X, y = next(iter(batches))
    assert X.context == mx.cpu() and y.context == mx.cpu()


def epoch_orders(batches):
    """The labels of each pass (batch by batch) -- labels here are 0..N-1."""
    return np.concatenate([y.asnumpy() for _, y in batches]).astype(int)


def expected_order(seed, epoch, n, batch_size):
    """Epoch `epoch`'s order: drawn from (seed, epoch), sorted within each batch."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return np.concatenate([np.sort(order[i:i + batch_size]) for i in range(0, n, batch_size)])


def test_each_pass_is_the_next_epoch_drawn_from_the_seed_and_set_epoch_resumes():
    images, labels = np.zeros((23, 4, 4), dtype=np.uint8), np.arange(23)
    batches = ImageBatches(images, labels, 5, shuffle=True, seed=11)
    for epoch in (1, 2, 3):
        np.testing.assert_array_equal(epoch_orders(batches), expected_order(11, epoch, 23, 5))
    resumed = ImageBatches(images, labels, 5, shuffle=True, seed=11)
    resumed.set_epoch(3)
    np.testing.assert_array_equal(epoch_orders(resumed), expected_order(11, 3, 23, 5))
    np.testing.assert_array_equal(epoch_orders(resumed), expected_order(11, 4, 23, 5))
    # Without a seed each instance draws its own; an unshuffled pass is in order.
    orders = {tuple(epoch_orders(ImageBatches(images, labels, 5, shuffle=True)))
              for _ in range(3)}
    assert len(orders) == 3 and all(sorted(o) == list(range(23)) for o in orders)
    np.testing.assert_array_equal(epoch_orders(ImageBatches(images, labels, 5)), range(23))


def test_bad_batches_arguments_are_refused_with_their_message(small):
    images, labels = small
    cases = [
        (dict(images=images[:3], labels=labels[:2], batch_size=2), '3 images but 2 labels'),
        (dict(images=images, labels=labels, batch_size=2, resize=0),
         'resize must be a positive integer, got 0'),
        (dict(images=images, labels=labels, batch_size=2, resize=1025),
         'resize 1025 is above 1024, the largest side batches are resized to'),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as info:
            ImageBatches(**kwargs)
        assert str(info.value) == message
    assert ImageBatches(images, labels, batch_size=2, resize=1024).resize == 1024
    assert len(ImageBatches(images, labels, batch_size=1)) == 37


def test_balanced_subset_bounds_and_default_seed():
    labels = np.repeat(np.arange(10), 50)
    np.testing.assert_array_equal(balanced_subset(labels, 500), np.arange(500))  # all of it
    np.testing.assert_array_equal(balanced_subset(labels, 30), balanced_subset(labels, 30, 0))
    uneven = np.array([0] * 10 + [1] * 2)
    with pytest.raises(ValueError) as info:
        balanced_subset(uneven, 6)
    assert str(info.value) == ('a class-balanced subset of 6 needs up to 3 examples per class; '
                               'the smallest class has 2 (there are 12 in all)')
    with pytest.raises(ValueError) as info:
        balanced_subset(uneven, 0)
    assert str(info.value) == 'subset size must be a positive integer, got 0'


def test_shard_indices_interleave_and_refuse_what_does_not_exist():
    np.testing.assert_array_equal(shard_indices(10, 3, 0), [0, 3, 6])
    np.testing.assert_array_equal(shard_indices(10, 3, 2), [2, 5, 8])
    np.testing.assert_array_equal(shard_indices(2, 2, 1), [1])
    for args, message in (((10, 3, 3), 'part 3 of 3 does not exist'),
                          ((10, 3, -1), 'part -1 of 3 does not exist'),
                          ((2, 3, 0), '2 examples cannot be shared by 3 workers')):
        with pytest.raises(ValueError) as info:
            shard_indices(*args)
        assert str(info.value) == message


def test_subsets_are_drawn_with_the_seed_and_only_the_training_set_is_sharded():
    rng = np.random.default_rng(0)
    arrays = {split: (rng.integers(0, 256, (n, 2, 2), dtype=np.uint8), np.arange(n) % 5)
              for split, n in (('train', 50), ('test', 30))}
    splits = subsets_and_shard(arrays, 20, 10, seed=3, num_parts=2, part_index=1)
    train = balanced_subset(arrays['train'][1], 20, 3)[1::2]
    test = balanced_subset(arrays['test'][1], 10, 3)
    np.testing.assert_array_equal(splits['train'][0], arrays['train'][0][train])
    np.testing.assert_array_equal(splits['train'][1], arrays['train'][1][train])
    np.testing.assert_array_equal(splits['test'][0], arrays['test'][0][test])
    whole = subsets_and_shard(arrays, None, None, seed=3)
    assert len(whole['train'][1]) == 50 and len(whole['test'][1]) == 30


@pytest.mark.parametrize('seed, message', [
    (-1, 'got -1'), (2 ** 32, 'got 4294967296'), (2.5, 'got 2.5'), (True, 'got True')])
def test_a_bad_seed_is_refused_in_one_line(seed, message):
    with pytest.raises(ValueError) as info:
        load_data_fashion_mnist(8, seed=seed)
    assert str(info.value) == f'seed must be a whole number in 0..4294967295, {message}'


# load_data_fashion_mnist on a small stand-in of the four files (conftest.py)

def test_load_data_reads_the_root_and_passes_on_its_options(fashion_stand_in):
    root, arrays = fashion_stand_in
    train, test = load_data_fashion_mnist(4, root=str(root), ctx=mx.cpu(1), seed=9)
    assert (train.num_examples, test.num_examples) == (40, 20)
    np.testing.assert_array_equal(test.images, arrays[('test', 'images')])
    assert train.shuffle and not test.shuffle and train.seed == test.seed == 9
    np.testing.assert_array_equal(epoch_orders(train),
                                  arrays[('train', 'labels')][expected_order(9, 1, 40, 4)])
    np.testing.assert_array_equal(epoch_orders(test), arrays[('test', 'labels')])
    X, y = next(iter(test))
    assert X.context == y.context == mx.cpu(1)
    # Subsets drawn with the seed (0 by default); a shard is part 0 unless told.
    train, test = load_data_fashion_mnist(4, root=str(root), num_train=20, num_test=10, seed=4,
                                          num_parts=2, part_index=1)
    index = balanced_subset(arrays[('train', 'labels')], 20, 4)[1::2]
    np.testing.assert_array_equal(train.images, arrays[('train', 'images')][index])
    index = balanced_subset(arrays[('test', 'labels')], 10, 4)
    np.testing.assert_array_equal(test.images, arrays[('test', 'images')][index])
    train, _ = load_data_fashion_mnist(4, root=str(root), num_train=20, num_parts=2)
    index = balanced_subset(arrays[('train', 'labels')], 20, 0)[0::2]
    np.testing.assert_array_equal(train.images, arrays[('train', 'images')][index])
    assert train.seed == 0


def test_load_data_downloads_from_the_mirrors_given_unless_told_not_to(fashion_stand_in,
                                                                       tmp_path, mirror_server):
    root, arrays = fashion_stand_in
    mirrors = (mirror_server + 'root/',)
    with pytest.raises(DataNotFoundError, match='download disabled'):
        load_data_fashion_mnist(4, root=str(tmp_path / 'empty'), download=False,
                                mirrors=mirrors)
    train, _ = load_data_fashion_mnist(4, root=str(tmp_path / 'new'), mirrors=mirrors)
    np.testing.assert_array_equal(train.images, arrays[('train', 'images')])
    assert sorted(os.listdir(tmp_path / 'new')) == sorted(os.listdir(root))


def test_the_largest_seed_is_accepted(fashion_stand_in):
    root, _ = fashion_stand_in
    train, _ = load_data_fashion_mnist(4, root=str(root), seed=2 ** 32 - 1)
    assert train.seed == 2 ** 32 - 1 and len(epoch_orders(train)) == 40


def test_subsets_and_shard_take_part_0_by_default():
    arrays = {split: (np.arange(n)[:, None, None] * np.ones((1, 2, 2), dtype=np.int64),
                      np.arange(n) % 5) for split, n in (('train', 10), ('test', 5))}
    splits = subsets_and_shard(arrays, None, None, seed=0, num_parts=2)
    np.testing.assert_array_equal(splits['train'][1], [0, 2, 4, 1, 3])
    np.testing.assert_array_equal(splits['train'][0][:, 0, 0], [0, 2, 4, 6, 8])
