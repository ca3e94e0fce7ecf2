"""The VGG paper's evaluation: fully-connected layers as convolutions, scales,
crops, ensembles and top-k error."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import init, nd

from d2lnets.inference import vgg_eval
from d2lnets.models.resnet import resnet18_book
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg


@pytest.fixture(scope='module')
def small_vgg():
    mx.random.seed(0)
    net = vgg(narrow(CONV_ARCHS['A'], 16), num_classes=5, fc_units=32)
    net.initialize(init.Xavier())
    net(nd.zeros((1, 3, 224, 224)))
    return net


def photo(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return nd.array(rng.integers(0, 256, size=(height, width, 3)), dtype='uint8')


def test_dense_network_equals_the_original_at_224(small_vgg):
    dense = vgg_eval.to_dense(small_vgg)
    x = nd.random.uniform(shape=(2, 3, 224, 224))
    np.testing.assert_allclose(dense(x).asnumpy(), small_vgg(x).asnumpy(), rtol=1e-4,
                               atol=1e-5)
    assert dense.score_map(x).shape == (2, 5, 1, 1)


def test_dense_network_takes_any_size_and_averages_its_score_map(small_vgg):
    dense = vgg_eval.to_dense(small_vgg)
    x = nd.random.uniform(shape=(1, 3, 256, 320))
    score_map = dense.score_map(x)
    assert score_map.shape == (1, 5, 2, 4)  # 256 / 32 - 6 by 320 / 32 - 6
    np.testing.assert_allclose(dense(x).asnumpy(), score_map.mean(axis=(2, 3)).asnumpy(),
                               rtol=1e-5)
    dense.hybridize()
    assert dense(x).shape == (1, 5) and dense(nd.zeros((1, 3, 224, 224))).shape == (1, 5)


def test_only_a_vgg_converts():
    net = resnet18_book()
    net.initialize()
    net(nd.zeros((1, 1, 96, 96)))
    with pytest.raises(ValueError, match='cannot take a 7x7 map'):
        vgg_eval.to_dense(net)  # its one Dense layer takes 512 pooled features
    with pytest.raises(ValueError, match='no fully-connected layer'):
        vgg_eval.to_dense(net[:-1])


def test_crops_cover_the_image_corner_to_corner():
    img = photo(300, 400)
    grid = vgg_eval.crops(img, 224, 5)
    assert len(grid) == 25 and all(c.shape == (224, 224, 3) for c in grid)
    np.testing.assert_array_equal(grid[0].asnumpy(), img[:224, :224].asnumpy())
    np.testing.assert_array_equal(grid[-1].asnumpy(), img[76:, 176:].asnumpy())
    with pytest.raises(ValueError, match='smaller than the 224x224 crop'):
        vgg_eval.crops(photo(200, 400), 224)


def test_scale_and_crop_scores_are_probabilities(small_vgg):
    dense = vgg_eval.to_dense(small_vgg)
    img = photo(240, 300)
    by_dense = vgg_eval.dense_scores(dense, img, scales=(224, 256))
    by_crops = vgg_eval.multi_crop_scores(small_vgg, img, scales=(224, 256), grid=2)
    for probs in (by_dense, by_crops):
        assert probs.shape == (5,)
        assert abs(probs.sum().asscalar() - 1) < 1e-5


def test_ensemble_averages_the_members():
    members = [lambda img: nd.array([1.0, 0.0]), lambda img: nd.array([0.5, 0.5])]
    np.testing.assert_allclose(vgg_eval.ensemble(members, None).asnumpy(), [0.75, 0.25])


def test_topk_error_on_known_predictions():
    probs = [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]]
    labels = [1, 1, 0]
    assert vgg_eval.topk_error(probs, labels, 1) == pytest.approx(2 / 3)
    assert vgg_eval.topk_error(probs, labels, 2) == pytest.approx(1 / 3)
    assert vgg_eval.topk_error(probs, labels, 3) == 0
    with pytest.raises(ValueError, match='need \\(N, classes\\) probabilities'):
        vgg_eval.topk_error([0.1, 0.9], [1], 1)


def test_topk_error_takes_ndarrays_as_numpy():
    probs = [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]]
    labels = [1, 1, 0]
    for k, expected in ((1, 2 / 3), (2, 1 / 3)):
        assert vgg_eval.topk_error(nd.array(probs), nd.array(labels), k) == \
            pytest.approx(expected)
        assert vgg_eval.topk_error(nd.softmax(nd.array(probs)), np.array(labels), k) == \
            pytest.approx(expected)
    with pytest.raises(ValueError, match=r'got \(2,\) and \(1,\)$'):
        vgg_eval.topk_error(nd.array([0.1, 0.9]), nd.array([1]), 1)


@pytest.mark.parametrize('k, labels, message', [
    (0, [1, 0], r'k must be a whole number in 1..3 \(the number of classes\), got 0'),
    (-1, [1, 0], 'got -1'),
    (4, [1, 0], 'k must be a whole number in 1..3'),
    (1.5, [1, 0], 'got 1.5'),
    (1, [3, 0], r'label 3 is not a class index in 0..2'),
    (1, [1, -1], r'label -1 is not a class index in 0..2'),
    (1, [0.5, 1], r'label 0.5 is not a class index'),
    (1, ['cat', 'dog'], 'labels must be class indices'),
])
def test_topk_error_refuses_k_and_labels_outside_the_classes(k, labels, message):
    probs = [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]
    with pytest.raises(ValueError, match=message):
        vgg_eval.topk_error(probs, labels, k)
    if not isinstance(labels[0], str):  # an NDArray holds only numbers
        with pytest.raises(ValueError, match=message):
            vgg_eval.topk_error(nd.array(probs), nd.array(labels), k)
