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


# What the paper's evaluation feeds the network, checked against float64 NumPy ------

def asymmetric_net(seen):
    """A stand-in network whose three scores tell left from right and top from
    bottom (so a flip changes them); it records every batch it is given."""
    def net(x):
        seen.append(x.shape)
        half_w, half_h = x.shape[3] // 2, x.shape[2] // 2
        return nd.stack(x[:, 0, :, :half_w].mean(axis=(1, 2)),
                        x[:, 0, :, half_w:].mean(axis=(1, 2)) * 2,
                        x[:, 1, :half_h].mean(axis=(1, 2)) * 3, axis=1)
    return net


def asymmetric_scores(x):
    """`asymmetric_net` in float64 NumPy on an (N, 3, H, W) array."""
    half_w, half_h = x.shape[3] // 2, x.shape[2] // 2
    return np.stack([x[:, 0, :, :half_w].mean(axis=(1, 2)),
                     x[:, 0, :, half_w:].mean(axis=(1, 2)) * 2,
                     x[:, 1, :half_h].mean(axis=(1, 2)) * 3], axis=1)


def softmax64(scores):
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def reference_probs(inputs, flips):
    """Mean softmax over a batch of prepared inputs and, with `flips`, their mirror images."""
    x = inputs.asnumpy().astype(np.float64)
    if flips:
        x = np.concatenate([x, x[..., ::-1]])
    return softmax64(asymmetric_scores(x)).mean(axis=0)


@pytest.mark.parametrize('flips', [True, False])
def test_dense_scores_average_each_scale_and_its_flip(flips):
    img, scales = photo(40, 60), (32, 48)
    probs = vgg_eval.dense_scores(asymmetric_net([]), img, scales=scales, flips=flips)
    expected = np.mean([reference_probs(vgg_eval.prepare(mx.image.resize_short(img, q)), flips)
                        for q in scales], axis=0)
    np.testing.assert_allclose(probs.asnumpy(), expected, rtol=1e-5)


@pytest.mark.parametrize('flips', [True, False])
def test_multi_crop_scores_average_the_corner_crops_and_their_flips(flips):
    img, scales, size = photo(40, 60), (32, 40), 24
    probs = vgg_eval.multi_crop_scores(asymmetric_net([]), img, scales=scales, size=size,
                                       grid=2, flips=flips)
    expected = []
    for q in scales:
        resized = mx.image.resize_short(img, q).asnumpy()
        h, w = resized.shape[:2]
        corners = np.stack([resized[t:t + size, left:left + size]
                            for t in (0, h - size) for left in (0, w - size)])
        expected.append(reference_probs(vgg_eval.prepare(nd.array(corners, dtype='uint8')),
                                        flips))
    np.testing.assert_allclose(probs.asnumpy(), np.mean(expected, axis=0), rtol=1e-5)


def test_the_papers_defaults_three_scales_5x5_crops_and_flips():
    img = photo(256, 320)
    seen = []
    vgg_eval.dense_scores(asymmetric_net(seen), img)
    assert seen == [(2, 3, 256, 320), (2, 3, 384, 480), (2, 3, 512, 640)]
    seen = []
    vgg_eval.multi_crop_scores(asymmetric_net(seen), img, scales=(256,))
    assert seen == [(50, 3, 224, 224)]  # 5 x 5 crops and their flips
    grid = vgg_eval.crops(photo(300, 400))
    assert len(grid) == 25 and all(c.shape == (224, 224, 3) for c in grid)


def test_an_image_exactly_the_crop_size_is_one_crop_repeated():
    for height, width in ((224, 300), (300, 224), (224, 224)):
        img = photo(height, width)
        grid = vgg_eval.crops(img, 224, 3)
        assert len(grid) == 9
        assert all(c.shape == (224, 224, 3) for c in grid)
    np.testing.assert_array_equal(grid[4].asnumpy(), img.asnumpy())


def test_ensemble_averages_what_each_member_says_about_the_image():
    img = photo(8, 8)
    members = [lambda im: nd.softmax(im[:, :, 0].astype('float32').mean(axis=0) / 100),
               lambda im: nd.softmax(im[:, :, 1].astype('float32').mean(axis=1) / 100)]
    expected = (members[0](img) + members[1](img)) / 2
    np.testing.assert_allclose(vgg_eval.ensemble(members, img).asnumpy(), expected.asnumpy(),
                               rtol=1e-6)


def test_the_evaluation_runs_where_the_network_lives(small_vgg, tmp_path):
    """A network on another device (here MXNet's second CPU context, as a GPU would be):
    the converted head, the prepared images and the scores stay on it."""
    where = mx.cpu(1)
    small_vgg.save_parameters(str(tmp_path / 'vgg.params'))
    elsewhere = vgg(narrow(CONV_ARCHS['A'], 16), num_classes=5, fc_units=32)
    elsewhere.load_parameters(str(tmp_path / 'vgg.params'), ctx=where)
    img = photo(224, 240)
    dense = vgg_eval.to_dense(elsewhere)
    assert {p.list_ctx()[0] for p in dense.collect_params().values()} == {where}
    by_dense = vgg_eval.dense_scores(dense, img, scales=(224,), ctx=where)
    by_crops = vgg_eval.multi_crop_scores(elsewhere, img, scales=(224,), grid=2, ctx=where)
    assert by_dense.context == where and by_crops.context == where
    here = vgg_eval.dense_scores(vgg_eval.to_dense(small_vgg), img, scales=(224,))
    np.testing.assert_allclose(by_dense.asnumpy(), here.asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(
        by_crops.asnumpy(),
        vgg_eval.multi_crop_scores(small_vgg, img, scales=(224,), grid=2).asnumpy(), rtol=1e-5)


def test_dense_head_holds_the_dense_weights_reshaped(small_vgg):
    dense = vgg_eval.to_dense(small_vgg)
    fcs = [b for b in small_vgg if isinstance(b, mx.gluon.nn.Dense)]
    assert len(dense.head) == len(fcs) == 3
    for conv, fc, size in zip(dense.head, fcs, (7, 1, 1)):
        weight = fc.weight.data().asnumpy()
        np.testing.assert_array_equal(  # readable before any forward pass
            conv.weight.data().asnumpy(),
            weight.reshape(weight.shape[0], -1, size, size))
        np.testing.assert_array_equal(conv.bias.data().asnumpy(), fc.bias.data().asnumpy())


def test_to_dense_says_what_is_not_a_vgg():
    with pytest.raises(ValueError) as info:
        vgg_eval.to_dense(mx.gluon.nn.HybridSequential())
    assert str(info.value) == ('the network has no fully-connected layer to convert; give a '
                               'VGG built by d2lnets.models.vgg.vgg')
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(4, in_units=49), mx.gluon.nn.Activation('relu'),
            mx.gluon.nn.Dense(2, in_units=4))  # 49 inputs: one channel of 7x7
    net.initialize()
    with pytest.raises(ValueError) as info:
        vgg_eval.to_dense(net)
    assert str(info.value) == 'Activation after the first Dense layer: not a VGG'


def topk_error64(probabilities, labels, k):
    """Top-k error by counting: a label is in the top k when fewer than k classes are
    strictly more probable (no ties here)."""
    p = np.asarray(probabilities, dtype=np.float64)
    above = (p > p[np.arange(len(p)), labels][:, None]).sum(axis=1)
    return float(np.mean(above >= k))


def test_topk_error_against_counting_on_random_probabilities():
    rng = np.random.default_rng(3)
    probs = softmax64(rng.normal(size=(200, 10)))
    labels = rng.integers(0, 10, size=200)
    for k in (1, 2, 5, 9, 10):
        assert vgg_eval.topk_error(probs, labels, k) == topk_error64(probs, labels, k)
    assert 0.7 < vgg_eval.topk_error(probs, labels, 1) < 1  # not trivially 0 or 1


def test_topk_error_breaks_ties_toward_the_lower_class_index():
    # a network that cannot tell 1000 classes apart: its top 5 are classes 0..4
    uniform = np.full((3, 1000), 1e-3)
    assert vgg_eval.topk_error(uniform, [0, 4, 5], 5) == pytest.approx(1 / 3)
    assert vgg_eval.topk_error(uniform, [0, 1, 2], 1) == pytest.approx(2 / 3)


@pytest.mark.parametrize('probabilities, labels', [
    (np.zeros((0, 3)), []),                     # no examples
    ([[0.5, 0.5], [0.1, 0.9]], [[0], [1]]),     # labels not a vector
    ([0.1, 0.9], [1, 0]),                       # probabilities not a matrix
    ([[[0.1, 0.9]]], [1]),
])
def test_topk_error_refuses_shapes_that_are_not_n_by_classes(probabilities, labels):
    with pytest.raises(ValueError, match=r'need \(N, classes\) probabilities for N labels'):
        vgg_eval.topk_error(probabilities, labels, 1)
