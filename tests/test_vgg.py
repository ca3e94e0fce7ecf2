"""VGG: the book's shapes, the paper's parameter counts, MXNet's model zoo."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, init, nd

from d2lnets.viz.shapes import count_parameters, layer_table
from d2lnets.models import get_model, list_models, model_input_shape
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg, vgg_block, vgg_paper

IMAGENET = (1, 3, 224, 224)

# Table 2 of Simonyan and Zisserman (2015), in millions.
PAPER_MILLIONS = {'A': 133, 'A-LRN': 133, 'B': 133, 'C': 134, 'D': 138, 'E': 144}
# Exact counts published for the ImageNet models (torchvision's model cards and
# MXNet's model zoo agree): learnable parameters.
PUBLISHED = {'vgg11': 132_863_336, 'vgg13': 133_047_848, 'vgg16': 138_357_544,
             'vgg19': 143_667_240, 'vgg11_bn': 132_868_840, 'vgg13_bn': 133_053_736,
             'vgg16_bn': 138_365_992, 'vgg19_bn': 143_678_248}


def test_book_shape_table():
    rows = layer_table(vgg(CONV_ARCHS['A']), (1, 1, 224, 224))
    assert [r.output_shape for r in rows] == [
        (1, 64, 112, 112), (1, 128, 56, 56), (1, 256, 28, 28), (1, 512, 14, 14),
        (1, 512, 7, 7), (1, 4096), (1, 4096), (1, 4096), (1, 4096), (1, 10)]
    assert [r.name.rstrip('0123456789') for r in rows] == (
        ['hybridsequential'] * 5 + ['dense', 'dropout', 'dense', 'dropout', 'dense'])


@pytest.mark.parametrize('config', sorted(PAPER_MILLIONS))
def test_paper_table_2(config):
    count = count_parameters(vgg_paper(config), IMAGENET)
    assert round(count / 1e6) == PAPER_MILLIONS[config]


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_published_counts(name):
    assert count_parameters(get_model(name), IMAGENET, trainable_only=True) == PUBLISHED[name]


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_equal_to_mxnet_model_zoo_to_the_parameter(name):
    zoo = getattr(mx.gluon.model_zoo.vision, name)()
    for trainable_only in (False, True):
        assert (count_parameters(get_model(name), IMAGENET, trainable_only)
                == count_parameters(zoo, IMAGENET, trainable_only))


def test_configuration_c_uses_1x1_convolutions():
    convs = [p.shape for name, p in vgg_paper('C').collect_params().items()
             if name.endswith('weight') and 'conv' in name]
    assert [s for s in convs if s and s[-1] == 1] == [(256, 0, 1, 1), (512, 0, 1, 1),
                                                       (512, 0, 1, 1)]


def test_lrn_only_in_the_first_block():
    kinds = [type(layer).__name__ for layer in vgg_paper('A-LRN').features]
    assert kinds[:4] == ['Conv2D', 'Activation', 'LocalResponseNorm', 'MaxPool2D']
    assert kinds.count('LocalResponseNorm') == 1


def test_local_response_norm_against_float64_reference():
    from d2lnets.models.vgg import LocalResponseNorm
    x = np.random.default_rng(0).normal(size=(2, 7, 3, 3))
    out = LocalResponseNorm()(nd.array(x)).asnumpy()
    padded = np.pad(x ** 2, ((0, 0), (2, 2), (0, 0), (0, 0)))
    window = sum(padded[:, i:i + 7] for i in range(5))
    np.testing.assert_allclose(out, x / (2 + 1e-4 / 5 * window) ** 0.75, rtol=1e-5)


def test_narrow():
    assert narrow(CONV_ARCHS['A'], 4) == ((1, 16), (1, 32), (2, 64), (2, 128), (2, 128))
    assert narrow(CONV_ARCHS['C'], 2)[2] == (3, 128, (3, 3, 1))
    for bad in (0, -4, 3, 1.5, 128):
        with pytest.raises(ValueError, match='ratio'):
            narrow(CONV_ARCHS['A'], bad)


def test_block_kernel_sizes_must_match():
    with pytest.raises(ValueError, match='2 convolutions but 3 kernel sizes'):
        vgg_block(2, 64, kernel_sizes=(3, 3, 1))


def small_net(batch_norm=False):
    net = vgg(narrow(CONV_ARCHS['A'], 16), fc_units=64, batch_norm=batch_norm)
    net.initialize(init.Xavier())
    return net


@pytest.mark.parametrize('batch_norm', [False, True])
def test_hybridized_equals_imperative(batch_norm):
    net = small_net(batch_norm)
    X = nd.random.uniform(shape=(4, 1, 32, 32))
    imperative = net(X).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(X).asnumpy(), imperative, rtol=1e-5, atol=1e-6)


def test_gradients_reach_the_input():
    net = small_net()
    X = nd.random.uniform(shape=(2, 1, 32, 32))
    X.attach_grad()
    with autograd.record():
        net(X)[:, 3].sum().backward()
    assert np.abs(X.grad.asnumpy()).sum() > 0
    assert np.isfinite(X.grad.asnumpy()).all()


@pytest.mark.parametrize('name', [n for n in list_models() if n.startswith('vgg')])
def test_every_vgg_on_a_small_input(name):
    """Output shape, finite values, hybridized equal to imperative and gradients
    reaching the input, at 32x32 with narrow dense layers (the convolutions are
    those of the full network)."""
    mx.random.seed(0)
    net = get_model(name, num_classes=7, fc_units=32)
    net.initialize(init.Xavier())
    X = nd.random.uniform(shape=(2, model_input_shape(name)[0], 32, 32))
    imperative = net(X).asnumpy()
    assert imperative.shape == (2, 7) and np.isfinite(imperative).all()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(X).asnumpy(), imperative, rtol=1e-4, atol=1e-5)
    X.attach_grad()
    with autograd.record():
        net(X)[:, 1].sum().backward()
    assert np.abs(X.grad.asnumpy()).sum() > 0
