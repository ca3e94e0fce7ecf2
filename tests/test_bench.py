"""The benchmark's PyTorch twins compute what the Gluon networks compute, and
the benchmark runs end to end and writes its JSON."""
import importlib.util
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

from bench import speed
from d2lnets.models.alexnet import alexnet_book
from d2lnets.models.batchnorm import lenet_bn
from d2lnets.models.lenet import lenet_first_edition
from d2lnets.models.nin import nin
from d2lnets.models.resnet import resnet18_book
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg

needs_torch = pytest.mark.skipif(importlib.util.find_spec('torch') is None,
                                 reason='PyTorch is not installed (pip install torch==2.13.0)')


def initialised(builder, side):
    mx.random.seed(1)
    net = builder()
    net.initialize(init.Xavier())
    X = mx.nd.random.uniform(shape=(2, 1, side, side))
    net(X)
    return net, X


@needs_torch
@pytest.mark.parametrize('builder, side', [
    (lenet_first_edition, 28), (lenet_bn, 28), (alexnet_book, 224), (nin, 224),
    (lambda: vgg(narrow(CONV_ARCHS['A'], 16), fc_units=64), 64),
])
def test_torch_twin_gives_the_same_output(builder, side):
    import torch

    from bench.torch_twin import torch_twin
    net, X = initialised(builder, side)
    twin = torch_twin(net).eval()
    with torch.no_grad():
        expected = twin(torch.from_numpy(X.asnumpy())).numpy()
    np.testing.assert_allclose(net(X).asnumpy(), expected, rtol=1e-4, atol=1e-5)


@needs_torch
def test_a_network_with_its_own_blocks_has_no_twin():
    from bench.torch_twin import NotConvertible, torch_twin
    net, _ = initialised(resnet18_book, 32)
    with pytest.raises(NotConvertible, match='Residual'):
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
