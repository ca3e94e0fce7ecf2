"""Plane-by-plane pooling gives nn.MaxPool2D's and nn.AvgPool2D's numbers,
forward and backward, and LeNet's first pooling layer uses it."""
import numpy as np
import pytest
from mxnet import autograd, nd
from mxnet.gluon import nn

from d2lnets.models import planewise
from d2lnets.models.batchnorm import lenet_bn
from d2lnets.models.lenet import lenet, lenet_first_edition

SETTINGS = [
    dict(pool_size=2, strides=2),                                   # LeNet's
    dict(pool_size=3, strides=2, padding=1),
    dict(pool_size=(3, 2), strides=(2, 1), padding=(1, 0), ceil_mode=True),
    dict(pool_size=3, strides=1, padding=1, count_include_pad=False),
]


def output_and_input_gradient(pool, x, hybridize):
    if hybridize:
        pool.hybridize()
    x = x.copy()
    x.attach_grad()
    with autograd.record():
        y = pool(x)
    y.backward(nd.arange(y.size).reshape(y.shape) % 7)   # unequal weights, to see the routing
    return y.asnumpy(), x.grad.asnumpy()


@pytest.mark.parametrize('hybridize', [False, True], ids=['imperative', 'hybridized'])
@pytest.mark.parametrize('kind', ['MaxPool2D', 'AvgPool2D'])
@pytest.mark.parametrize('setting', SETTINGS, ids=['lenet', 'padded', 'ceil', 'exclude_pad'])
def test_same_numbers_as_gluons_pooling(kind, setting, hybridize):
    if kind == 'MaxPool2D':
        setting = {k: v for k, v in setting.items() if k != 'count_include_pad'}
    x = nd.random.normal(shape=(3, 6, 11, 10))
    expected = output_and_input_gradient(getattr(nn, kind)(**setting), x, hybridize)
    got = output_and_input_gradient(getattr(planewise, kind)(**setting), x, hybridize)
    for e, g in zip(expected, got):
        assert e.shape == g.shape
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


def test_other_layouts_are_refused():
    with pytest.raises(ValueError, match=r"pools NCHW input only, got layout 'NHWC'; "
                                         r"use nn.MaxPool2D"):
        planewise.MaxPool2D(layout='NHWC')


@pytest.mark.parametrize('builder, kind', [
    (lenet_first_edition, nn.MaxPool2D), (lenet, nn.AvgPool2D), (lenet_bn, nn.MaxPool2D)])
def test_lenets_pool_their_six_channels_plane_by_plane(builder, kind):
    pools = [block for block in builder() if isinstance(block, kind)]
    assert [type(p).__module__ for p in pools] == ['d2lnets.models.planewise',
                                                  'mxnet.gluon.nn.conv_layers']
    assert all(type(p).__name__ == kind.__name__ for p in pools)   # prints as the book's
