"""Mini-batches: shapes, order, subsets and the batch-wise resize."""
import mxnet as mx
import numpy as np
import pytest

from d2lnets.data.batches import ImageBatches, balanced_subset, load_data_fashion_mnist


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
