"""How fast the chapters' networks train and predict: d2lnets against the
book's own code as its users run it and against the same architecture in
PyTorch, with the spread of every number.

    python -m bench.speed                              # every network, 10 s a turn
    python -m bench.speed --models lenet alexnet --repeats 5 --json bench.json
    python -m bench.speed --models vgg --memory        # peak memory too

Every contender is timed for at least `--min-seconds` (and `--min-steps`
steps) a turn, after `--warmup` untimed steps; the contenders take turns
within each of `--repeats` repeats, so a busy machine slows them alike; the
report gives the median images/s over the repeats with its min-max, and
each ratio as the median of the repeat-by-repeat ratios with their min-max.

On one fixed batch in memory, at the book's input size and batch size:

- `d2lnets`: `train_ch5`'s step, hybridized with static memory, the loss
  kept on the device;
- `d2lnets-imperative`: the same step, not hybridized;
- `book-loop`: the book's `train_ch5` step as written (not hybridized, the
  loss and accuracy read back with `asscalar()` after every batch), in this
  process and so with d2lnets' thread settings;
- `pytorch`: the same architecture in PyTorch on the CPU, with the same
  weights (`bench.torch_twin`; skipped with a message when PyTorch is not
  installed: `pip install torch==2.13.0`);
- `pytorch-bf16`: the same twin in channels-last layout, forward pass and
  loss under `torch.autocast('cpu', dtype=torch.bfloat16)` (weights and
  the optimizer stay float32), as PyTorch's CPU performance guide advises;
  skipped where the CPU has no bf16 instructions (AVX-512 BF16 or AMX).

Whole training loops over Fashion-MNIST, data loading included:

- `d2lnets-chapter`: d2lnets' `train_ch5` over `load_data_fashion_mnist`'s
  batches, as `python -m chapters.<name>` trains;
- `book`: the book's own `d2lzh.train_ch5` and `d2lzh.load_data_fashion_mnist`
  (`bench.book_worker`) in a fresh process of the book's Python environment
  (`--book-python`, default `.venv-book/bin/python`) with the environment
  this command was started with, less nothing and plus nothing;
- `book-2threads`: the same with OMP_NUM_THREADS=2, d2lnets' thread count
  on a 2-core machine, for a fairer fight.

It also measures the data pipelines alone, this CPU's float32 peak as a
large matrix product, and the fraction of that peak each network's training
reaches (3 x 2 x multiply-adds an image: forward plus a backward twice its
cost). Peak memory (`--memory`, Linux) is the highest resident set of a
fresh process training the network with one contender, whole process.
"""
import os

USER_ENV = dict(os.environ)  # before d2lnets sets its thread settings

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import d2lnets  # noqa: E402,F401  (sets the thread count before MXNet loads)
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon, init, nd  # noqa: E402
from mxnet.gluon import loss as gloss  # noqa: E402

from bench.networks import LEARNING_RATE, NETWORKS  # noqa: E402
from bench.timing import (TimedBatches, cpu_model, interleaved, paired_ratio, spread,  # noqa: E402
                          time_steps, usable_cores)
from d2lnets._threads import thread_settings  # noqa: E402
from d2lnets.data.batches import ImageBatches  # noqa: E402
from d2lnets.data.fashion_mnist import FILES, load_arrays, search_dirs  # noqa: E402
from d2lnets.training.loop import train_ch5  # noqa: E402
from d2lnets.viz.shapes import multiply_adds  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXED_BATCH = ('d2lnets', 'd2lnets-imperative', 'book-loop', 'pytorch', 'pytorch-bf16')
WHOLE_LOOP = ('d2lnets-chapter', 'book', 'book-2threads')
CONTENDERS = FIXED_BATCH + WHOLE_LOOP
# (numerator, denominator) of the ratios reported
RATIOS = (('d2lnets', 'pytorch'), ('d2lnets', 'pytorch-bf16'), ('d2lnets', 'book-loop'), ('d2lnets-chapter', 'book'),
          ('d2lnets-chapter', 'book-2threads'))
BOOK_VENV_HINT = ('python3 -m venv .venv-book && .venv-book/bin/pip install d2lzh==1.0.0 '
                  'mxnet==1.9.1 numpy==1.23.5')
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
    """`run(steps)`: training steps of `net` on (X, y); `sync_every_batch`
    reads the loss and accuracy back as the book's loop does."""
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

    def run(steps):
        for _ in range(steps):
            step()
        nd.waitall()
    return run


def mxnet_predictor(net, X):
    def run(steps):
        for _ in range(steps):
            out = net(X)
        out.wait_to_read()
    return run


def cpu_has_bf16():
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX), from /proc/cpuinfo."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f
                          if line.startswith('flags')), [])
    except OSError:
        return False
    return 'avx512_bf16' in flags or 'amx_bf16' in flags


def torch_contender(gluon_reference, X, y, bf16=False):
    """(train runner, inference runner) for the PyTorch twin, or a reason it is
    absent; `bf16`: channels-last, forward and loss under bfloat16 autocast."""
    try:
        import torch
        from bench.torch_twin import NotConvertible, torch_twin
    except ImportError:
        return None, 'PyTorch is not installed (pip install torch==2.13.0)'
    if bf16 and not cpu_has_bf16():
        return None, 'this CPU has no bfloat16 instructions (AVX-512 BF16 or AMX)'
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    try:
        model = torch_twin(gluon_reference)
    except NotConvertible as err:
        return None, f'no PyTorch twin ({err})'
    tX = torch.from_numpy(X.asnumpy())
    ty = torch.from_numpy(y.asnumpy().astype(np.int64))
    if bf16:
        model = model.to(memory_format=torch.channels_last)
        tX = tX.contiguous(memory_format=torch.channels_last)

    def autocast():
        return torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss = torch.nn.CrossEntropyLoss()

    def train(steps):
        model.train()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                batch_loss = loss(model(tX), ty)
            batch_loss.backward()
            optimizer.step()

    def infer(steps):
        model.eval()
        with torch.inference_mode(), autocast():
            for _ in range(steps):
                model(tX)
    return (train, infer), None


class BookWorker:
    """`bench.book_worker` in a fresh process of the book's Python; calling it
    times one turn: (images, seconds)."""

    def __init__(self, name, python, network, data_root, env):
        self.name = name
        self.log = tempfile.TemporaryFile('w+')
        env = dict(env, PYTHONPATH=os.pathsep.join(
            [REPO_ROOT] + [p for p in [env.get('PYTHONPATH')] if p]))
        self.process = subprocess.Popen(
            [python, '-m', 'bench.book_worker', network, data_root], cwd=REPO_ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.settings = self._reply()
        self.peak_mb = None

    def __call__(self, min_seconds, min_steps):
        self.process.stdin.write(f'{min_seconds} {min_steps}\n')
        self.process.stdin.flush()
        reply = self._reply()
        self.peak_mb = reply['peak_mb']
        return reply['images'], reply['seconds']

    def _reply(self):
        line = self.process.stdout.readline()
        if not line:
            self.log.seek(0)
            lines = self.log.read().strip().splitlines() or ['no message']
            raise RuntimeError(f'the book worker stopped: {lines[-1]}')
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


def data_root_or_none(root):
    """The first directory holding Fashion-MNIST's four files, or None."""
    for directory in search_dirs(root):
        if all(os.path.isfile(os.path.join(directory, name)) for name, _ in FILES.values()):
            return directory
    return None


def chapter_runner(builder, side, batch_size, data_root):
    """d2lnets' `train_ch5` over `load_data_fashion_mnist`'s batches, as the
    chapters train: `run(min_seconds, min_steps)` gives (images, seconds)."""
    arrays = load_arrays(root=data_root, download=False)
    resize = None if side == 28 else side
    train_iter = ImageBatches(*arrays['train'], batch_size, shuffle=True, resize=resize,
                              ctx=CTX, seed=0)
    test_iter = ImageBatches(*(a[:2] for a in arrays['test']), 2, resize=resize, ctx=CTX)
    mx.random.seed(0)
    net = builder()
    net.initialize(init.Xavier(), ctx=CTX)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': LEARNING_RATE})
    hybridized = []

    def run(min_seconds, min_steps):
        batches = TimedBatches(train_iter, min_seconds, min_steps, sync=nd.waitall)
        train_ch5(net, batches, test_iter, batch_size, trainer, CTX, 1,
                  hybridize=not hybridized, log=lambda line: None)
        hybridized.append(True)
        return batches.images, batches.seconds
    return run


def contenders(chapter, args, wanted):
    """name -> (train runner, inference runner or None), name -> why skipped,
    and the book workers started (to close). A train runner takes
    (min_seconds, min_steps) and gives (images, seconds)."""
    builder, side, batch_size, in_book = NETWORKS[chapter]
    batch_size = args.batch_size or batch_size
    X, y = fixed_batch(side, batch_size)
    runners, skipped, workers = {}, {}, []

    def fixed(train, infer):
        return (lambda s, n: time_steps(train, batch_size, s, n),
                infer and (lambda s, n: time_steps(infer, batch_size, s, n)))
    data_root = data_root_or_none(args.data_root)
    for name in wanted:
        if name in ('pytorch', 'pytorch-bf16'):
            pair, reason = torch_contender(gluon_net(builder, X, hybridize=False), X, y,
                                           bf16=name == 'pytorch-bf16')
            if pair is None:
                skipped[name] = reason
            else:
                runners[name] = fixed(*pair)
        elif name in FIXED_BATCH:
            net = gluon_net(builder, X, hybridize=name == 'd2lnets')
            book_loop = name == 'book-loop'  # predicts as d2lnets-imperative does
            runners[name] = fixed(
                mxnet_stepper(net, X, y, batch_size, sync_every_batch=book_loop),
                None if book_loop else mxnet_predictor(net, X))
        elif data_root is None:
            skipped[name] = ('Fashion-MNIST not found: give --data-root or set '
                             '$D2LNETS_FASHION_MNIST')
        elif name == 'd2lnets-chapter':
            runners[name] = (chapter_runner(builder, side, batch_size, data_root), None)
        elif args.batch_size:
            skipped[name] = 'the book worker runs the book\'s batch size only'
        elif not in_book:
            skipped[name] = 'not in the book'
        elif not os.path.exists(args.book_python):
            skipped[name] = f'no book environment at {args.book_python}: {BOOK_VENV_HINT}'
        else:
            env = dict(USER_ENV, OMP_NUM_THREADS='2') if name == 'book-2threads' else USER_ENV
            worker = BookWorker(name, args.book_python, chapter, data_root, env)
            workers.append(worker)
            runners[name] = (worker, None)
    return runners, skipped, workers


def timed(runners, args):
    """name -> list of images/s per repeat, each runner warmed up first."""
    for run in runners.values():
        run(0, args.warmup)
    return interleaved({name: (lambda run=run: run(args.min_seconds, args.min_steps))
                        for name, run in runners.items()}, args.repeats)


def measure_network(chapter, args):
    builder, side, batch_size, _ = NETWORKS[chapter]
    batch_size = args.batch_size or batch_size
    runners, skipped, workers = contenders(chapter, args, args.contenders)
    try:
        train = timed({n: r[0] for n, r in runners.items()}, args)
        infer = timed({n: r[1] for n, r in runners.items() if r[1] is not None}, args)
    finally:
        for worker in workers:
            worker.close()
    ratios = {f'{a}/{b}': paired_ratio(train[a], train[b])
              for a, b in RATIOS if a in train and b in train}
    flops = 6 * multiply_adds(builder(), (1, 1, side, side))
    row = dict(network=chapter, input=side, batch_size=batch_size, train_samples=train,
               infer_samples=infer, train={n: spread(v) for n, v in train.items()},
               infer={n: spread(v) for n, v in infer.items()}, ratios=ratios,
               skipped=skipped, train_flops_per_image=flops)
    row['book_settings'] = {w.name: w.settings for w in workers}
    row['book_peak_mb'] = {w.name: w.peak_mb for w in workers}
    return row


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
    """Peak resident memory, in MiB, of a fresh process training `chapter`
    with `contender` for a few steps (whole process, imports included)."""
    command = [sys.executable, '-m', 'bench.speed', '--child', chapter, contender,
               '--min-steps', '3', '--warmup', '1']
    for option in ('batch_size', 'data_root'):
        if getattr(args, option):
            command += ['--' + option.replace('_', '-'), str(getattr(args, option))]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT,
                         env=USER_ENV).stdout
    return json.loads(out.strip().splitlines()[-1])['peak_mb']


def child(chapter, contender, args):
    runners, skipped, _ = contenders(chapter, args, [contender])
    if contender in runners:
        runners[contender][0](0, args.min_steps)
    print(json.dumps({'peak_mb': None if skipped else _peak_resident_mib()}))


def memory_only(args):
    """network -> contender -> peak resident MiB, without timing anything."""
    table = {}
    for chapter in args.models:
        row = table[chapter] = {}
        for name in args.contenders:
            if name not in ('book', 'book-2threads'):
                row[name] = peak_memory_mb(chapter, name, args)
                continue
            runners, skipped, workers = contenders(chapter, args, [name])
            try:
                if name in runners:
                    runners[name][0](0, args.min_steps)
                row[name] = workers[0].peak_mb if workers else None
            finally:
                for worker in workers:
                    worker.close()
        print(f"{chapter:<10} peak MiB: " + ', '.join(
            f"{n} {'-' if v is None else f'{v:,.0f}'}" for n, v in row.items()), flush=True)
    return table


def child_rate(chapter, contender, args):
    """Print one contender's training images/s as JSON (for `bench.ab`)."""
    runners, skipped, _ = contenders(chapter, args, [contender])
    if skipped:
        raise SystemExit(f'{contender}: {skipped[contender]}')
    runners[contender][0](0, args.warmup)
    images, seconds = runners[contender][0](args.min_seconds, args.min_steps)
    print(json.dumps({'images_per_s': images / seconds}))


def _peak_resident_mib():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024


def machine():
    info = dict(cpu=cpu_model(), cores=usable_cores(), python=platform.python_version(),
                mxnet=mx.__version__, **thread_settings(os.environ),
                **{f'user_{k}': v for k, v in thread_settings(USER_ENV).items()},
                load_average=os.getloadavg())
    try:
        import torch
        info['torch'] = torch.__version__
    except ImportError:
        info['torch'] = None
    return info


def _spread_text(s, digits=1):
    return f"{s['median']:,.{digits}f} [{s['min']:,.{digits}f}-{s['max']:,.{digits}f}]"


def print_report(report):
    m = report['machine']
    print(f"machine: {m['cpu']}, {m['cores']} cores, MXNet {m['mxnet']}, "
          f"PyTorch {m['torch'] or 'absent'}; load average at the start "
          f"{', '.join(f'{x:.2f}' for x in m['load_average'])}")
    print('float32 matrix product, 2048x2048: ' + ', '.join(
        f'{name} {rate:.0f} GFLOP/s' for name, rate in report['matrix_product_gflops'].items())
        + f"; peak taken as {report['peak_gflops']:.0f}")
    print('images/s: median [min-max] over the repeats')
    print(f"{'network':<10} {'input':>5} {'batch':>5} {'contender':<17} {'train images/s':>26} "
          f"{'infer images/s':>26} {'% peak':>6} {'peak MiB':>8}")
    for row in report['networks']:
        for name, train in row['train'].items():
            memory = row.get('memory', {}).get(name)
            share = 100 * train['median'] * row['train_flops_per_image'] / \
                (report['peak_gflops'] * 1e9)
            infer = _spread_text(row['infer'][name]) if name in row['infer'] else ''
            print(f"{row['network']:<10} {row['input']:>5} {row['batch_size']:>5} {name:<17} "
                  f"{_spread_text(train):>26} {infer:>26} {share:>6.1f} "
                  f"{'' if memory is None else f'{memory:,.0f}':>8}")
        for name, reason in row['skipped'].items():
            print(f"{row['network']:<10} {'':>5} {'':>5} {name:<17} skipped: {reason}")
        for pair, ratio in row['ratios'].items():
            print(f"{'':<10} training {pair}: {_spread_text(ratio, 2)}x")
    for side, rates in report['data_pipeline'].items():
        print(f"data pipeline at {side}x{side}: d2lnets {rates['d2lnets']:.0f} images/s, "
              f"book's DataLoader {rates['book']:.0f} images/s")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.speed', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=list(NETWORKS), default=list(NETWORKS),
                        help='networks to measure (default: all)')
    parser.add_argument('--contenders', nargs='+', choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument('--batch-size', type=int, help='override the book\'s batch size '
                        '(the book contenders are then skipped)')
    parser.add_argument('--min-seconds', type=float, default=10.0,
                        help='least time a contender runs a turn (default 10)')
    parser.add_argument('--min-steps', type=int, default=3,
                        help='least steps a contender runs a turn (default 3)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    parser.add_argument('--repeats', type=int, default=3,
                        help='turns of each contender, interleaved (default 3)')
    parser.add_argument('--memory', action='store_true',
                        help='peak memory of each contender, in a fresh process each')
    parser.add_argument('--memory-only', action='store_true',
                        help='only the peak memory, no timing (load does not change it)')
    parser.add_argument('--data-root', help='Fashion-MNIST\'s directory, for the whole-loop '
                        'contenders (default: where d2lnets finds it)')
    parser.add_argument('--book-python', default=os.path.join(REPO_ROOT, '.venv-book', 'bin',
                                                              'python'),
                        help='Python of the book\'s environment (d2lzh, mxnet 1.9.1)')
    parser.add_argument('--json', help='also write the results to this file')
    parser.add_argument('--child', nargs=2, metavar=('NETWORK', 'CONTENDER'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--child-rate', nargs=2, metavar=('NETWORK', 'CONTENDER'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ('min_steps', 'repeats'):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.min_seconds < 0 or args.warmup < 0:
        parser.error('--min-seconds and --warmup cannot be negative')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(*args.child, args)
        return
    if args.child_rate:
        child_rate(*args.child_rate, args)
        return
    if args.memory_only:
        table = memory_only(args)
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(dict(machine=machine(), command=' '.join(sys.argv),
                               peak_memory_mb=table), f, indent=1)
        return
    products = matmul_peak()
    report = dict(machine=machine(), command=' '.join(sys.argv), matrix_product_gflops=products,
                  peak_gflops=max(products.values()), networks=[], data_pipeline={})
    for chapter in args.models:
        row = measure_network(chapter, args)
        if args.memory:
            row['memory'] = {name: peak_memory_mb(chapter, name, args)
                             for name in row['train'] if name not in row['book_peak_mb']}
            row['memory'].update(row['book_peak_mb'])
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
