"""The benchmark's PyTorch twins compute what the Gluon networks compute, and
the benchmark runs end to end and writes its JSON."""
import importlib.util
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

from bench import speed
from mxnet.gluon import nn

from d2lnets.models.alexnet import alexnet_book
from d2lnets.models.batchnorm import lenet_bn
from d2lnets.models.densenet import densenet, densenet_book
from d2lnets.models.googlenet import googlenet
from d2lnets.models.lenet import lenet_first_edition
from d2lnets.models.nin import nin
from d2lnets.models.resnet import resnet, resnet18_book
from d2lnets.models.squeezenet import squeezenet
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg

needs_torch = pytest.mark.skipif(importlib.util.find_spec('torch') is None,
                                 reason='PyTorch is not installed (pip install torch==2.13.0)')


def initialised(builder, side, channels=1):
    mx.random.seed(1)
    net = builder()
    net.initialize(init.Xavier())
    X = mx.nd.random.uniform(shape=(2, channels, side, side))
    net(X)
    return net, X


def with_batch_statistics(net, X):
    """Run `net` once in training mode so that batch norm's moving averages
    are no longer their initial 0 and 1 (a twin that ignored them would pass)."""
    with mx.autograd.record():
        net(X)


@needs_torch
@pytest.mark.parametrize('builder, side, channels', [
    (lenet_first_edition, 28, 1), (lenet_bn, 28, 1), (alexnet_book, 224, 1), (nin, 224, 1),
    (lambda: vgg(narrow(CONV_ARCHS['A'], 16), fc_units=64), 64, 1),
    (googlenet, 32, 1), (resnet18_book, 32, 1), (densenet_book, 32, 1),
    (lambda: resnet(50, num_classes=10), 32, 3),
    (lambda: densenet(16, 8, (2, 2), bottleneck=True), 32, 3),
    (lambda: squeezenet('1.1', num_classes=10), 64, 3),
    (lambda: squeezenet('1.0', 'complex', num_classes=10), 64, 3),
], ids=['lenet', 'lenet_bn', 'alexnet', 'nin', 'vgg', 'googlenet', 'resnet18_book',
        'densenet_book', 'resnet50', 'densenet_bc', 'squeezenet1_1', 'squeezenet_bypass'])
def test_torch_twin_gives_the_same_output(builder, side, channels):
    import torch

    from bench.torch_twin import torch_twin
    net, X = initialised(builder, side, channels)
    with_batch_statistics(net, X)
    twin = torch_twin(net).eval()
    with torch.no_grad():
        expected = twin(torch.from_numpy(X.asnumpy())).numpy()
    np.testing.assert_allclose(net(X).asnumpy(), expected, rtol=1e-4, atol=1e-5)


@needs_torch
def test_a_block_of_unknown_kind_has_no_twin():
    from bench.torch_twin import NotConvertible, torch_twin

    class Doubling(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return 2 * x
    net = nn.HybridSequential()
    net.add(nn.Dense(3), Doubling())
    net.initialize()
    net(mx.nd.ones((1, 4)))
    with pytest.raises(NotConvertible, match='Doubling'):
        torch_twin(net)


def test_benchmark_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / 'bench.json'
    speed.main(['--models', 'lenet', 'resnet', '--batch-size', '8', '--steps', '1',
                '--warmup', '1', '--repeats', '2', '--json', str(path)])
    report = json.loads(path.read_text())
    assert report['peak_gflops'] > 0
    lenet, resnet = report['networks']
    for name in ('d2lnets', 'd2lnets-imperative', 'book'):
        assert lenet['train'][name] > 0 and lenet['infer'][name] > 0
    has_torch = importlib.util.find_spec('torch') is not None
    assert ('pytorch' in lenet['train']) == has_torch
    assert 'pytorch' in resnet['skipped']
    # LeNet by hand: two convolutions' outputs x fan-in, three dense layers' weights.
    lenet_macs = 6 * 24 * 24 * 25 + 16 * 8 * 8 * 150 + 256 * 120 + 120 * 84 + 84 * 10
    assert lenet['train_flops_per_image'] == 6 * lenet_macs
    assert set(report['data_pipeline']) == {'28', '96'}
    assert 'd2lnets training speed' in capsys.readouterr().out
