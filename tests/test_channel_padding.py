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


# ------------------------------------------------ BN-LeNet: batch norm at 8 channels

def trained(net, steps=3, hybridize=True, ctx=None):
    """`net` after `steps` SGD steps on the test batch (on the contexts `ctx`)."""
    ctx = ctx or [mx.cpu()]
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    if len(ctx) > 1:
        net.collect_params().reset_ctx(ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5})
    x, y = batch()
    for _ in range(steps):
        xs, ys = gluon.utils.split_and_load(x, ctx), gluon.utils.split_and_load(y, ctx)
        with autograd.record():
            losses = [gluon.loss.SoftmaxCrossEntropyLoss()(net(a), b) for a, b in zip(xs, ys)]
        for loss in losses:
            loss.backward()
        trainer.step(x.shape[0])
    return net


def saved(net):
    return {name: p.data().asnumpy() for name, p in net._collect_params_with_prefix().items()}


def assert_same_parameters(ours, theirs, averages=True):
    """Equal saved names and values (the biases in front of a batch norm have
    a true gradient of 0 and stay at float32 noise: hence the 1e-6 floor);
    without the moving averages if not `averages`."""
    got, expected = saved(ours), saved(theirs)
    assert list(got) == list(expected)
    for name in expected:
        if not averages and name.endswith(('running_mean', 'running_var')):
            continue
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-4,
                                   atol=1e-5 * np.abs(expected[name]).max() + 1e-6,
                                   err_msg=name)


def bn_layers():
    """The layers of BN-LeNet, as `lenet_bn()` has them."""
    return lenet_layers('first', norm=lambda features, dims: nn.BatchNorm())


def bn_lenet(container):
    net = container()
    net.add(*bn_layers())
    return initialised(net)


@pytest.mark.parametrize('ctx', [[mx.cpu()], [mx.cpu(0), mx.cpu(1)]], ids=['one', 'two-contexts'])
@pytest.mark.parametrize('hybridize', [True, False], ids=['hybridized', 'imperative'])
def test_bn_lenet_trains_as_the_plain_sequence_moving_averages_included(hybridize, ctx):
    ours = trained(bn_lenet(ChannelPaddedSequential), hybridize=hybridize, ctx=ctx)
    theirs = trained(bn_lenet(nn.HybridSequential), hybridize=hybridize, ctx=ctx)
    if len(ctx) > 1:
        # On two CPU contexts MXNet's own moving averages vary from run to run
        # (the plain sequence's too: 0.0227 apart after 3 steps, in some runs
        # of a process), so there only the trained parameters are compared.
        assert_same_parameters(ours, theirs, averages=False)
        return
    assert_same_parameters(ours, theirs)  # the same saved names: no extra entries
    assert np.abs(saved(theirs)['1.running_mean']).max() > 1e-3  # the averages did move
    x, _ = batch(1)
    np.testing.assert_allclose(ours(x).asnumpy(), theirs(x).asnumpy(), rtol=1e-4, atol=1e-4)


def test_bn_lenet_graph_runs_the_first_convolution_and_batch_norm_at_8_channels():
    net = trained(bn_lenet(ChannelPaddedSequential), steps=1)
    nodes = json.loads(net._cached_graph[1].tojson())['nodes']
    assert [n['attrs']['num_filter'] for n in nodes if n['op'] == 'Convolution'] == ['8', '16']
    first_norm = next(n for n in nodes if n['op'] == 'BatchNorm')
    inputs = [nodes[i]['name'] for i, *_ in first_norm['inputs']]
    assert [name.split('_', 1)[1] for name in inputs[3:]] == ['padded_running_mean',
                                                              'padded_running_var']


def test_bn_lenet_predicts_with_the_moving_averages_it_loads(tmp_path):
    x, _ = batch(1)
    trained(bn_lenet(nn.HybridSequential)).save_parameters(str(tmp_path / 'trained.params'))
    ours = trained(bn_lenet(ChannelPaddedSequential), steps=1)  # other moving averages
    ours.load_parameters(str(tmp_path / 'trained.params'))
    fresh = ChannelPaddedSequential()  # loaded before its first forward pass
    fresh.add(*bn_layers())
    fresh.load_parameters(str(tmp_path / 'trained.params'))
    fresh.hybridize()
    theirs = bn_lenet(nn.HybridSequential)
    theirs.load_parameters(str(tmp_path / 'trained.params'))
    expected = theirs(x).asnumpy()
    np.testing.assert_allclose(ours(x).asnumpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fresh(x).asnumpy(), expected, rtol=1e-5, atol=1e-5)


def test_bn_lenet_inside_a_hybridized_parent_runs_plain_and_keeps_its_averages():
    def wrapped(container):
        parent = nn.HybridSequential()
        parent.add(bn_lenet(container))
        return parent
    ours, theirs = trained(wrapped(ChannelPaddedSequential)), trained(wrapped(nn.HybridSequential))
    assert_same_parameters(ours, theirs)
    nodes = json.loads(ours._cached_graph[1].tojson())['nodes']
    assert [n['attrs']['num_filter'] for n in nodes if n['op'] == 'Convolution'] == ['6', '16']


def test_bn_lenet_shows_the_books_layers_and_parameters():
    ours, theirs = bn_lenet(ChannelPaddedSequential), bn_lenet(nn.HybridSequential)
    assert ([p.shape for p in ours.collect_params().values()]
            == [p.shape for p in theirs.collect_params().values()])
    assert ([row[1:] for row in layer_table(ours, BATCH)]
            == [row[1:] for row in layer_table(theirs, BATCH)])


def test_bn_lenet_hybridized_before_its_first_pass_trains_as_the_plain_sequence(tmp_path):
    """As `train_ch5` runs it: initialized with deferred shapes, hybridized,
    then trained; from the same parameters, as the plain sequence."""
    x, _ = batch()
    ours = ChannelPaddedSequential()
    ours.add(*bn_layers())
    ours.initialize(mx.init.Xavier())
    ours.hybridize(static_alloc=True, static_shape=True)
    ours(x)
    ours.save_parameters(str(tmp_path / 'start.params'))
    theirs = plain('first', bn_layers())
    theirs.load_parameters(str(tmp_path / 'start.params'))
    assert_same_parameters(trained(ours), trained(theirs))
