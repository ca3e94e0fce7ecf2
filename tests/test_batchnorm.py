"""Batch normalisation from scratch against float64 and against nn.BatchNorm;
layer normalisation against float64."""

import numpy as np
import pytest
from mxnet import autograd, init, nd
from mxnet.gluon import nn

from d2lnets.viz.shapes import layer_table
from d2lnets.models import get_model
from d2lnets.models.batchnorm import BatchNorm, LayerNorm, batch_norm

RNG = np.random.default_rng(0)


def reference_batch_norm(x, axes, eps=1e-5):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps), mean, var


@pytest.mark.parametrize('shape, axes', [((16, 5), (0,)), ((8, 3, 4, 4), (0, 2, 3))])
def test_batch_norm_training_against_float64(shape, axes):
    x = RNG.normal(2.0, 3.0, size=shape)
    stat = (1, shape[1]) if len(shape) == 2 else (1, shape[1], 1, 1)
    gamma, beta = RNG.normal(size=stat), RNG.normal(size=stat)
    mm, mv = RNG.normal(size=stat), RNG.uniform(0.5, 2, size=stat)
    with autograd.record():  # training mode
        Y, new_mean, new_var = batch_norm(*(nd.array(a) for a in (x, gamma, beta, mm, mv)),
                                          eps=1e-5, momentum=0.9)
    x_hat, mean, var = reference_batch_norm(x, axes)
    np.testing.assert_allclose(Y.asnumpy(), gamma * x_hat + beta, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new_mean.asnumpy(), 0.9 * mm + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(new_var.asnumpy(), 0.9 * mv + 0.1 * var, rtol=1e-5)


def test_batch_norm_prediction_uses_the_moving_statistics():
    x = RNG.normal(size=(4, 3))
    gamma, beta = np.ones((1, 3)), np.zeros((1, 3))
    mm, mv = RNG.normal(size=(1, 3)), RNG.uniform(0.5, 2, size=(1, 3))
    Y, out_mean, out_var = batch_norm(*(nd.array(a) for a in (x, gamma, beta, mm, mv)),
                                      eps=1e-5, momentum=0.9)
    np.testing.assert_allclose(Y.asnumpy(), (x - mm) / np.sqrt(mv + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(out_mean.asnumpy(), mm, rtol=1e-6)


def test_scratch_block_equals_nn_batchnorm_in_training_and_prediction():
    scratch, concise = BatchNorm(3, num_dims=4), nn.BatchNorm(in_channels=3)
    scratch.initialize()
    concise.initialize()
    for _ in range(3):
        X = nd.array(RNG.normal(1.0, 2.0, size=(8, 3, 5, 5)))
        with autograd.record():
            a, b = scratch(X), concise(X)
            total = a.sum() + b.sum()
        total.backward()  # nn.BatchNorm updates its moving statistics in backward
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scratch.moving_mean.data().asnumpy().ravel(),
                               concise.running_mean.data().asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(scratch.moving_var.data().asnumpy().ravel(),
                               concise.running_var.data().asnumpy(), rtol=1e-5)
    X = nd.array(RNG.normal(size=(2, 3, 5, 5)))
    np.testing.assert_allclose(scratch(X).asnumpy(), concise(X).asnumpy(), rtol=1e-4, atol=1e-4)


def test_moving_statistics_are_saved_with_the_parameters(tmp_path):
    net = get_model('lenet_bn_scratch')
    net.initialize(init.Xavier())
    with autograd.record():
        net(nd.array(RNG.normal(size=(4, 1, 28, 28))))
    path = str(tmp_path / 'p.params')
    net.save_parameters(path)
    saved = nd.load(path)
    moving = [k for k in saved if 'moving_mean' in k]
    assert len(moving) == 4
    assert any(np.abs(saved[k].asnumpy()).sum() > 0 for k in moving)


def test_layer_norm_against_float64_and_independent_of_the_batch():
    x = RNG.normal(2.0, 3.0, size=(6, 3, 4, 4))
    ln = LayerNorm(3, num_dims=4)
    ln.initialize()
    ln.gamma.set_data(nd.array(RNG.normal(size=(1, 3, 1, 1))))
    gamma = ln.gamma.data().asnumpy()
    out = ln(nd.array(x)).asnumpy()
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(ln(nd.array(x[:1])).asnumpy(), out[:1], rtol=1e-5, atol=1e-6)


def test_bad_dimensions_are_refused():
    with pytest.raises(ValueError, match='num_dims must be 2'):
        BatchNorm(3, num_dims=3)


def test_imperative_blocks_are_a_clear_error_for_shape_inference():
    with pytest.raises(ValueError, match='is an imperative Block'):
        layer_table(get_model('lenet_bn_scratch'), (1, 1, 28, 28))
