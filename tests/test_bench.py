"""The benchmark's PyTorch twins compute what the Gluon networks compute, and
the benchmark runs end to end and writes its JSON."""
import importlib.util
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import init

from bench import speed, timing
from bench.networks import NETWORKS
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


def test_time_steps_runs_whole_chunks_until_the_time_is_up(monkeypatch):
    clock, calls = [100.0], []
    monkeypatch.setattr(timing.time, 'perf_counter', lambda: clock[0])

    def run(steps):
        calls.append(steps)
        clock[0] += 0.02 * steps
    images, seconds = timing.time_steps(run, batch_size=4, min_seconds=0.1, min_steps=2)
    assert calls[0] == 2 and len(calls) == 2   # 2 steps take 0.04 s: 3 more fill 0.1 s
    assert sum(calls) in (5, 6) and images == 4 * sum(calls)
    assert 0.1 <= seconds == pytest.approx(0.02 * sum(calls))
    calls.clear()
    assert timing.time_steps(run, 4, min_seconds=0, min_steps=5) == (20, pytest.approx(0.1))
    assert calls == [5]


def test_timed_batches_go_round_the_epochs_and_sync_once():
    loader = [(None, np.zeros(3)), (None, np.zeros(2))]   # an epoch: 3 + 2 examples
    syncs = []
    batches = timing.TimedBatches(loader, min_seconds=0, min_steps=5,
                                  sync=lambda: syncs.append(1))
    assert len(list(batches)) == 5
    assert batches.images == 3 + 2 + 3 + 2 + 3 and syncs == [1] and batches.seconds >= 0


def test_contenders_take_turns_and_ratios_pair_the_repeats():
    order = []
    runners = {name: (lambda name=name: order.append(name) or (10, 2.0)) for name in 'ab'}
    assert timing.interleaved(runners, repeats=3) == {'a': [5.0] * 3, 'b': [5.0] * 3}
    assert order == ['a', 'b'] * 3
    ratio = timing.paired_ratio([10, 30, 20], [5, 10, 20])
    assert ratio == {'median': 2.0, 'min': 1.0, 'max': 3.0}   # 2, 3, 1 repeat by repeat


def test_benchmark_runs_and_writes_json(tmp_path, capsys):
    path = tmp_path / 'bench.json'
    speed.main(['--models', 'lenet', 'resnet', '--batch-size', '8', '--min-seconds', '0',
                '--min-steps', '1', '--warmup', '1', '--repeats', '2',
                '--contenders', 'd2lnets', 'book-loop', 'pytorch', 'book',
                '--json', str(path)])
    report = json.loads(path.read_text())
    assert report['peak_gflops'] > 0
    lenet, resnet = report['networks']
    for name in ('d2lnets', 'book-loop'):
        assert len(lenet['train_samples'][name]) == 2
        assert 0 < lenet['train'][name]['min'] <= lenet['train'][name]['median'] \
            <= lenet['train'][name]['max']
    assert lenet['infer']['d2lnets']['median'] > 0 and 'book-loop' not in lenet['infer']
    assert lenet['ratios']['d2lnets/book-loop']['median'] > 0
    has_torch = importlib.util.find_spec('torch') is not None
    assert ('pytorch' in resnet['train']) == has_torch
    assert 'book\'s batch size' in lenet['skipped']['book']
    # LeNet by hand: two convolutions' outputs x fan-in, three dense layers' weights.
    lenet_macs = 6 * 24 * 24 * 25 + 16 * 8 * 8 * 150 + 256 * 120 + 120 * 84 + 84 * 10
    assert lenet['train_flops_per_image'] == 6 * lenet_macs
    assert set(report['data_pipeline']) == {'28', '96'}
    assert 'training d2lnets/book-loop' in capsys.readouterr().out


@pytest.mark.skipif(not os.path.exists(speed.parse_args([]).book_python),
                    reason='no book environment (.venv-book): ' + speed.BOOK_VENV_HINT)
@pytest.mark.skipif(speed.data_root_or_none(None) is None, reason='Fashion-MNIST not found')
def test_book_worker_trains_with_d2lzh_in_the_users_environment():
    args = speed.parse_args(['--models', 'lenet'])
    runners, skipped, workers = speed.contenders('lenet', args, ['book', 'book-2threads'])
    try:
        assert skipped == {}
        images, seconds = runners['book'][0](0, 2)
        assert images == 2 * 256 and seconds > 0
        book, two = workers
        assert book.settings['omp_num_threads'] == speed.USER_ENV.get('OMP_NUM_THREADS')
        assert two.settings['omp_num_threads'] == '2'
        assert book.peak_mb > 0
    finally:
        for worker in workers:
            worker.close()


def test_memory_only_measures_a_fresh_process(tmp_path):
    path = tmp_path / 'memory.json'
    speed.main(['--memory-only', '--models', 'lenet', '--contenders', 'd2lnets',
                '--batch-size', '8', '--json', str(path)])
    peak = json.loads(path.read_text())['peak_memory_mb']['lenet']['d2lnets']
    assert 100 < peak < 8 * 1024    # MXNet's import alone takes over 100 MiB


@needs_torch
def test_pytorch_bf16_contender_trains_in_bfloat16_or_says_why_not(monkeypatch):
    import torch
    args = speed.parse_args(['--models', 'lenet', '--batch-size', '8'])
    if speed.cpu_has_bf16():
        runners, skipped, _ = speed.contenders('lenet', args, ['pytorch-bf16'])
        images, seconds = runners['pytorch-bf16'][0](0, 2)
        assert skipped == {} and images == 16 and seconds > 0
        X, y = speed.fixed_batch(28, 8)
        net = speed.gluon_net(NETWORKS['lenet'][0], X, hybridize=False)
        (train, infer), _ = speed.torch_contender(net, X, y, bf16=True)
        outputs = []
        monkeypatch.setattr(torch.nn.Module, '__call__', record_outputs(outputs))
        infer(1)
        assert outputs[-1].dtype == torch.bfloat16  # autocast is on
    monkeypatch.setattr(speed, 'cpu_has_bf16', lambda: False)
    runners, skipped, _ = speed.contenders('lenet', args, ['pytorch-bf16'])
    assert runners == {} and 'no bfloat16 instructions' in skipped['pytorch-bf16']


def record_outputs(outputs, call=None):
    import torch
    call = call or torch.nn.Module.__call__

    def recording(module, *args, **kwargs):
        out = call(module, *args, **kwargs)
        outputs.append(out)
        return out
    return recording
