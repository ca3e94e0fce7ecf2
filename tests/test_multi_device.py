"""train_ch5 on a list of contexts: [cpu(0), cpu(1)] stand in for two GPUs."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init, nd
from mxnet.gluon import nn

from d2lnets.training.loop import as_context_list, evaluate_accuracy, train_ch5

DEVICES = [mx.cpu(0), mx.cpu(1)]


def mlp(ctx, like=None):
    net = nn.HybridSequential()
    net.add(nn.Dense(16, in_units=5, activation='relu'), nn.Dense(3, in_units=16))
    mx.random.seed(0)
    net.initialize(init.Normal(0.5), ctx=ctx)
    if like is not None:
        for mine, theirs in zip(net.collect_params().values(),
                                like.collect_params().values(), strict=True):
            mine.set_data(theirs.data())
    return net


def batches(count=5, n=10, seed=0):
    rng = np.random.default_rng(seed)
    return [(nd.array(rng.normal(size=(n, 5))), nd.array(rng.integers(0, 3, n), dtype='float32'))
            for _ in range(count)]


def copies(net):
    """{parameter: [its value on each context]} without the instance prefix."""
    return {name.split('_', 1)[1]: [d.asnumpy() for d in p.list_data()]
            for name, p in net.collect_params().items()}


def largest_gap(a, b):
    return max(np.abs(x - y).max() for name in a for x in a[name] for y in b[name])


def train(net, ctx, kvstore='device', epochs=2, data=None):
    data = data or batches()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1},
                            kvstore=kvstore)
    return train_ch5(net, data, data, 10, trainer, ctx, epochs, log=lambda line: None)


def test_two_devices_train_like_one():
    one = mlp(mx.cpu())
    two = mlp(DEVICES, like=one)
    h1, h2 = train(one, mx.cpu()), train(two, DEVICES)
    assert largest_gap(copies(one), copies(two)) < 1e-6
    assert h1.column('loss') == pytest.approx(h2.column('loss'), rel=1e-6)
    assert h1.column('train_acc') == h2.column('train_acc')


def test_negative_control_copies_left_alone_drift_apart():
    """Without a kvstore each device applies only its own half-batch's gradient:
    the copies differ, and the comparison above would fail."""
    one = mlp(mx.cpu())
    two = mlp(DEVICES, like=one)
    train(two, DEVICES, kvstore=None)
    values = copies(two)
    drift = max(np.abs(v[0] - v[1]).max() for v in values.values())
    assert drift > 1e-3
    train(one, mx.cpu())
    assert largest_gap(copies(one), values) > 1e-3


def test_a_batch_smaller_than_the_number_of_devices():
    one = mlp(mx.cpu())
    two = mlp(DEVICES, like=one)
    data = batches(count=2, n=1)
    train(one, mx.cpu(), data=data, epochs=1)
    train(two, DEVICES, data=data, epochs=1)
    assert largest_gap(copies(one), copies(two)) < 1e-6
    assert evaluate_accuracy(data, two, DEVICES) == evaluate_accuracy(data, one, mx.cpu())


def test_no_context_is_a_clear_error():
    with pytest.raises(ValueError, match='no context to train on'):
        as_context_list([])


def test_a_chapter_on_two_devices(tmp_path):
    import json
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, '-m', 'chapters.lenet', '--ctx', 'cpu:0,cpu:1', '--epochs', '1',
         '--num-train', '500', '--num-test', '200', '--out', str(tmp_path)],
        cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'training on [cpu(0), cpu(1)]' in result.stdout
    assert json.load(open(tmp_path / 'history.json'))['meta']['ctx'] == '[cpu(0), cpu(1)]'
