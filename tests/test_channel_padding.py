"""ChannelPaddedSequential (d2lnets/models/channel_padding.py): LeNet's narrow
first layer run at 8 channels gives the plain sequence's outputs and
gradients, keeps its parameters, and is taken only where it applies."""
import json

import d2lnets  # noqa: F401  (before MXNet)
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn
from seeded_models import seed_parameters, weight_gain

from d2lnets.models import channel_padding
from d2lnets.models.channel_padding import ChannelPaddedSequential
from d2lnets.models.lenet import lenet, lenet_layers
from d2lnets.viz.shapes import layer_table, multiply_adds

BATCH = (16, 1, 28, 28)


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return (nd.array(rng.uniform(-1, 1, BATCH).astype(np.float32)),
            nd.array(rng.integers(0, 10, BATCH[0]).astype(np.float32)))


def initialised(net):
    """`net` with the seeded parameters of the output tests (seeded_models)."""
    return seed_parameters(net, BATCH, gain=weight_gain('lenet'))


def plain(edition, layers=None):
    net = nn.HybridSequential()
    net.add(*(layers or lenet_layers(edition)))
    return net


def output_and_gradients(net, x, y):
    with autograd.record():
        out = net(x)
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(out, y)
    loss.backward()
    return out.asnumpy(), [p.grad().asnumpy() for p in net.collect_params().values()]


def operators(net):
    nodes = json.loads(net(mx.sym.var('data')).tojson())['nodes']
    return [node['op'] for node in nodes if node['op'] != 'null']


@pytest.mark.parametrize('hybridize', [True, False], ids=['hybridized', 'imperative'])
@pytest.mark.parametrize('edition', ['first', 'later'])
def test_outputs_and_gradients_equal_the_plain_sequence(edition, hybridize):
    x, y = batch()
    ours, theirs = initialised(lenet(edition)), initialised(plain(edition))
    if hybridize:
        ours.hybridize()
    out, grads = output_and_gradients(ours, x, y)
    expected_out, expected_grads = output_and_gradients(theirs, x, y)
    np.testing.assert_allclose(out, expected_out, rtol=1e-5, atol=1e-6)
    assert [g.shape for g in grads] == [g.shape for g in expected_grads]
    for got, expected in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize('channels, bias, activation', [(1, True, 'relu'), (3, False, None),
                                                       (7, True, 'tanh')])
def test_other_narrow_convolutions_give_the_plain_outputs_and_gradients(channels, bias,
                                                                        activation):
    def layers():
        return [nn.Conv2D(channels, 3, padding=1, use_bias=bias, activation=activation),
                nn.AvgPool2D(), nn.Conv2D(5, 3, use_bias=bias), nn.Dense(10)]
    x, y = batch()
    ours = ChannelPaddedSequential()
    ours.add(*layers())
    ours, theirs = initialised(ours), initialised(plain(None, layers()))
    ours.hybridize()
    out, grads = output_and_gradients(ours, x, y)
    expected_out, expected_grads = output_and_gradients(theirs, x, y)
    assert 'Concat' in operators(ours)
    np.testing.assert_allclose(out, expected_out, rtol=1e-5, atol=1e-5)
    for got, expected in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def test_the_hybridized_graph_runs_the_first_layer_at_8_channels():
    net = lenet('first')
    convolutions = [node for node in json.loads(net(mx.sym.var('data')).tojson())['nodes']
                    if node['op'] == 'Convolution']
    assert [node['attrs']['num_filter'] for node in convolutions] == ['8', '16']
    assert operators(net).count('Concat') == 3  # first weight and bias, second weight


def test_the_imperative_forward_takes_the_padded_path_once_initialised(monkeypatch):
    calls = []
    original = channel_padding._padded_stage

    def counted(*args):
        result = original(*args)
        calls.append(result is not None)
        return result
    monkeypatch.setattr(channel_padding, '_padded_stage', counted)
    net = lenet('first')
    net.initialize()
    x, _ = batch()
    net(x)  # deferred initialisation: the plain layers run
    net(x)
    assert calls == [False, True]


@pytest.mark.parametrize('inspected_first', [False, True], ids=['trained', 'inspected-first'])
def test_parameters_keep_the_books_shapes_and_saved_names(tmp_path, inspected_first):
    x, _ = batch()
    ours = lenet('first')
    if inspected_first:  # as the chapters do: graph variables with unknown input channels
        layer_table(ours, BATCH)
    ours.initialize(mx.init.Xavier())
    ours.hybridize()
    ours(x)  # shapes inferred through the padded graph
    assert [p.shape for p in ours.collect_params().values()] == [
        (6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 256), (120,), (84, 120), (84,),
        (10, 84), (10,)]
    ours.save_parameters(str(tmp_path / 'lenet.params'))
    theirs = plain('first')
    theirs.load_parameters(str(tmp_path / 'lenet.params'))
    np.testing.assert_allclose(theirs(x).asnumpy(), ours(x).asnumpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('layers', [
    lambda: [nn.Conv2D(8, 5), nn.MaxPool2D(), nn.Conv2D(16, 5)],           # not narrow
    lambda: [nn.Conv2D(6, 5), nn.BatchNorm(), nn.MaxPool2D(), nn.Conv2D(16, 5)],  # no pooling next
    lambda: [nn.Conv2D(6, 5), nn.MaxPool2D(), nn.Dense(10)],               # no convolution after
    lambda: [nn.Conv2D(6, 5), nn.MaxPool2D(), nn.Conv2D(16, 5, groups=2)],  # grouped
    lambda: [nn.Conv2D(6, 5), nn.MaxPool2D()],                             # too short
], ids=['8-channels', 'batch-norm', 'dense-after', 'grouped', 'short'])
def test_other_sequences_run_as_plain_hybrid_sequential(layers):
    ours = ChannelPaddedSequential()
    ours.add(*layers())
    assert operators(ours) == operators(plain(None, layers()))


def test_inspection_sees_the_books_layers_and_arithmetic():
    rows = layer_table(lenet('first'), BATCH)
    assert [row.output_shape for row in rows][:2] == [(16, 6, 24, 24), (16, 6, 12, 12)]
    assert len(rows) == 7
    book = 6 * 24 * 24 * 25 + 16 * 8 * 8 * 150 + 256 * 120 + 120 * 84 + 84 * 10
    assert multiply_adds(lenet('first'), (1, 1, 28, 28)) == book
