"""How fast the chapters' networks train and predict: d2lnets against the
book's own training path and against the same architecture in PyTorch.

    python -m bench.speed                              # every chapter network
    python -m bench.speed --models lenet alexnet --repeats 5 --json bench.json
    python -m bench.speed --models vgg --memory        # peak memory too

For each network at the book's input size and batch size it measures
training throughput (forward, backward and SGD update, images/s) and
inference throughput for these contenders, interleaved within each repeat so
that a busy machine slows them alike; it reports medians over the repeats,
each timed after warm-up steps:

- `d2lnets`: `train_ch5`'s step, hybridized with static memory, the loss
  kept on the device;
- `d2lnets-imperative`: the same step, not hybridized;
- `book`: the book's `train_ch5` step as it is written (D2L 5.5, first MXNet
  edition): not hybridized, reading the loss and accuracy back with
  `asscalar()` after every batch;
- `pytorch`: the same architecture in PyTorch on the CPU, built by
  `bench.torch_twin` (only for sequential networks; skipped with a message
  when PyTorch is not installed: `pip install torch==2.13.0`).

It also measures the data pipeline (d2lnets' batch resize against the book's
DataLoader with per-image transforms), this CPU's float32 peak as a large
matrix product, and the fraction of that peak each network's training
reaches (3 x 2 x multiply-adds an image: forward plus a backward twice its
cost). Peak memory (`--memory`, Linux) is how far the resident set of a fresh
process rises above what its imports took while it builds the network and
runs a few training steps of one contender.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import d2lnets  # noqa: F401  (sets the thread count before MXNet loads)
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, init, nd
from mxnet.gluon import loss as gloss

from d2lnets.data.batches import ImageBatches
from d2lnets.viz.shapes import multiply_adds
from d2lnets.models.alexnet import alexnet_book
from d2lnets.models.batchnorm import lenet_bn
from d2lnets.models.densenet import densenet_book
from d2lnets.models.googlenet import googlenet
from d2lnets.models.lenet import lenet_first_edition
from d2lnets.models.nin import nin
from d2lnets.models.resnet import resnet18_book
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg

# chapter: (builder, input side, batch size), as the chapters' book settings.
NETWORKS = {
    'lenet': (lenet_first_edition, 28, 256),
    'alexnet': (alexnet_book, 224, 128),
    'vgg': (lambda: vgg(narrow(CONV_ARCHS['A'], 4)), 224, 128),
    'nin': (nin, 224, 128),
    'googlenet': (googlenet, 96, 128),
    'batchnorm': (lenet_bn, 28, 256),
    'resnet': (resnet18_book, 96, 256),
    'densenet': (densenet_book, 96, 256),
}
CONTENDERS = ('d2lnets', 'd2lnets-imperative', 'book', 'pytorch')
LEARNING_RATE = 0.01
CTX = mx.cpu()


def fixed_batch(side, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    X = nd.array(rng.random((batch_size, 1, side, side)), ctx=CTX)
    y = nd.array(rng.integers(0, 10, batch_size), ctx=CTX)
    return X, y


def gluon_net(builder, X, hybridize):
    mx.random.seed(0)
    net = builder()
    net.initialize(init.Xavier(), ctx=CTX)
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    net(X).wait_to_read()
    return net


def mxnet_stepper(net, X, y, batch_size, sync_every_batch):
    """One training step of `net` on (X, y); `sync_every_batch` reads the loss
    and accuracy back as the book's loop does."""
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': LEARNING_RATE})
    loss = gloss.SoftmaxCrossEntropyLoss()

    def step():
        with autograd.record():
            y_hat = net(X)
            batch_loss = loss(y_hat, y).sum()
        batch_loss.backward()
        trainer.step(batch_size)
        if sync_every_batch:
            batch_loss.asscalar()
            (y_hat.argmax(axis=1) == y).sum().asscalar()
        return batch_loss

    def run(steps):
        for _ in range(steps):
            last = step()
        last.wait_to_read()
        nd.waitall()
    return run


def mxnet_predictor(net, X):
    def run(steps):
        for _ in range(steps):
            out = net(X)
        out.wait_to_read()
    return run


def torch_contender(gluon_reference, X, y):
    """(train runner, inference runner) for the PyTorch twin, or a reason it is absent."""
    try:
        import torch
        from bench.torch_twin import NotConvertible, torch_twin
    except ImportError:
        return None, 'PyTorch is not installed (pip install torch==2.13.0)'
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    try:
        model = torch_twin(gluon_reference)
    except NotConvertible as err:
        return None, f'no PyTorch twin ({err})'
    tX = torch.from_numpy(X.asnumpy())
    ty = torch.from_numpy(y.asnumpy().astype(np.int64))
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss = torch.nn.CrossEntropyLoss()

    def train(steps):
        model.train()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            batch_loss = loss(model(tX), ty)
            batch_loss.backward()
            optimizer.step()

    def infer(steps):
        model.eval()
        with torch.inference_mode():
            for _ in range(steps):
                model(tX)
    return (train, infer), None


def contenders(builder, side, batch_size, wanted):
    """name -> (train runner, inference runner), and name -> why it was skipped."""
    X, y = fixed_batch(side, batch_size)
    runners, skipped = {}, {}
    for name in wanted:
        if name == 'pytorch':
            pair, reason = torch_contender(gluon_net(builder, X, hybridize=False), X, y)
            if pair is None:
                skipped[name] = reason
            else:
                runners[name] = pair
            continue
        net = gluon_net(builder, X, hybridize=name == 'd2lnets')
        runners[name] = (mxnet_stepper(net, X, y, batch_size, sync_every_batch=name == 'book'),
                         mxnet_predictor(net, X))
    return runners, skipped


def interleaved(runners, batch_size, steps, warmup, repeats):
    """Median images/s of each runner, timed in turn within every repeat."""
    for run in runners.values():
        run(warmup)
    samples = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(steps)
            samples[name].append(steps * batch_size / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in samples.items()}


def measure_network(chapter, args):
    builder, side, batch_size = NETWORKS[chapter]
    batch_size = args.batch_size or batch_size
    runners, skipped = contenders(builder, side, batch_size, args.contenders)
    train = interleaved({n: r[0] for n, r in runners.items()}, batch_size, args.steps,
                        args.warmup, args.repeats)
    infer = interleaved({n: r[1] for n, r in runners.items()}, batch_size, args.steps,
                        args.warmup, args.repeats)
    flops = 6 * multiply_adds(builder(), (1, 1, side, side))
    return dict(network=chapter, input=side, batch_size=batch_size, train=train, infer=infer,
                skipped=skipped, train_flops_per_image=flops)


def data_pipeline(side, batch_size, batches=20):
    """images/s of d2lnets' in-memory batches with batch resize, and of the
    book's DataLoader (per-image Resize and ToTensor, 4 workers)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(batch_size * batches, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=len(images))
    ours = ImageBatches(images, labels, batch_size, shuffle=True, resize=side, ctx=CTX)
    from mxnet.gluon.data.vision import transforms
    resize = [transforms.Resize(side)] if side != images.shape[-1] else []
    transformer = transforms.Compose(resize + [transforms.ToTensor()])
    dataset = gluon.data.ArrayDataset(nd.array(images[..., None], dtype='uint8'), labels)
    book = gluon.data.DataLoader(dataset.transform_first(transformer), batch_size,
                                 shuffle=True, num_workers=4)
    rates = {}
    for name, loader in (('d2lnets', ours), ('book', book)):
        start = time.perf_counter()
        for X, _ in loader:
            X.wait_to_read()
        rates[name] = len(images) / (time.perf_counter() - start)
    return rates


def matmul_peak(n=2048, repeats=10):
    """float32 GFLOP/s of an n x n matrix product, the best of MXNet's two
    routes: `nd.dot` (OpenBLAS in the CPU wheel) and `FullyConnected` (oneDNN).
    On an AVX-512 Xeon here they differ by 5x, so the better one is the peak."""
    a = nd.random.uniform(shape=(n, n), ctx=CTX)
    b = nd.random.uniform(shape=(n, n), ctx=CTX)
    routes = {'dot': lambda: nd.dot(a, b),
              'FullyConnected': lambda: nd.FullyConnected(a, b, no_bias=True, num_hidden=n)}
    rates = {}
    for name, product in routes.items():
        product().wait_to_read()
        best = 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            product().wait_to_read()
            best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
        rates[name] = best
    return rates


def peak_memory_mb(chapter, contender, args):
    """Peak resident memory, in MiB, of a fresh process training `chapter` with
    `contender` for a few steps, less what the imports alone take."""
    command = [sys.executable, '-m', 'bench.speed', '--child', chapter, contender,
               '--steps', '2', '--warmup', '1']
    if args.batch_size:
        command += ['--batch-size', str(args.batch_size)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])['peak_mb']


def child(chapter, contender, args):
    if contender == 'pytorch':
        try:
            import torch  # noqa: F401  (its import is not the network's memory)
        except ImportError:
            pass
    baseline = _status_kib('VmRSS')
    _reset_peak()
    builder, side, batch_size = NETWORKS[chapter]
    runners, skipped = contenders(builder, side, args.batch_size or batch_size, [contender])
    if contender in runners:
        runners[contender][0](args.steps)
    peak = _status_kib('VmHWM')
    print(json.dumps({'peak_mb': None if skipped else (peak - baseline) / 1024}))


def _status_kib(field):
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ':'))


def _reset_peak():
    """Start VmHWM (peak resident memory) afresh from the current resident set."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def machine():
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    info = dict(cpu=cpu, cores=len(os.sched_getaffinity(0)), python=platform.python_version(),
                mxnet=mx.__version__, omp_num_threads=os.environ.get('OMP_NUM_THREADS'),
                omp_wait_policy=os.environ.get('OMP_WAIT_POLICY'))
    try:
        import torch
        info['torch'] = torch.__version__
    except ImportError:
        info['torch'] = None
    return info


def print_report(report):
    m = report['machine']
    print(f"machine: {m['cpu']}, {m['cores']} cores, MXNet {m['mxnet']}, "
          f"PyTorch {m['torch'] or 'absent'}")
    print('float32 matrix product, 2048x2048: ' + ', '.join(
        f'{name} {rate:.0f} GFLOP/s' for name, rate in report['matrix_product_gflops'].items())
        + f"; peak taken as {report['peak_gflops']:.0f}")
    print(f"{'network':<10} {'input':>5} {'batch':>5} {'contender':<19} {'train img/s':>11} "
          f"{'infer img/s':>11} {'% of peak':>9} {'memory MiB':>10}")
    for row in report['networks']:
        for name in row['train']:
            memory = row.get('memory', {}).get(name)
            share = 100 * row['train'][name] * row['train_flops_per_image'] / \
                (report['peak_gflops'] * 1e9)
            print(f"{row['network']:<10} {row['input']:>5} {row['batch_size']:>5} {name:<19} "
                  f"{row['train'][name]:>11.1f} {row['infer'][name]:>11.1f} {share:>9.1f} "
                  f"{'' if memory is None else f'{memory:.0f}':>10}")
        for name, reason in row['skipped'].items():
            print(f"{row['network']:<10} {'':>5} {'':>5} {name:<19} skipped: {reason}")
        ours = row['train'].get('d2lnets')
        ratios = [f'{ours / row["train"][other]:.2f}x {other}'
                  for other in ('book', 'pytorch') if ours and other in row['train']]
        if ratios:
            print(f"{'':<10} d2lnets training speed: {', '.join(ratios)}")
    for side, rates in report['data_pipeline'].items():
        print(f"data pipeline at {side}x{side}: d2lnets {rates['d2lnets']:.0f} images/s, "
              f"book's DataLoader {rates['book']:.0f} images/s")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.speed', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=list(NETWORKS), default=list(NETWORKS),
                        help='chapter networks to measure (default: all)')
    parser.add_argument('--contenders', nargs='+', choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument('--batch-size', type=int, help='override the book\'s batch size')
    parser.add_argument('--steps', type=int, default=3, help='timed steps a repeat')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps first')
    parser.add_argument('--repeats', type=int, default=3, help='repeats; medians reported')
    parser.add_argument('--memory', action='store_true',
                        help='peak memory of each contender, in a fresh process each')
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument('--child', nargs=2, metavar=('NETWORK', 'CONTENDER'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ('steps', 'repeats'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be at least 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(*args.child, args)
        return
    products = matmul_peak()
    report = dict(machine=machine(), command=' '.join(sys.argv), matrix_product_gflops=products,
                  peak_gflops=max(products.values()), networks=[], data_pipeline={})
    for chapter in args.models:
        row = measure_network(chapter, args)
        if args.memory:
            row['memory'] = {name: peak_memory_mb(chapter, name, args) for name in row['train']}
        report['networks'].append(row)
    sides = sorted({NETWORKS[chapter][1] for chapter in args.models})
    report['data_pipeline'] = {side: data_pipeline(side, 128) for side in sides}
    print_report(report)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
