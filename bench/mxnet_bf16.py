"""MXNet's own bfloat16 (`mxnet.contrib.amp`) against float32: training
images/s of a chapter's network at the book's input size, each precision in
a fresh process (AMP rewrites MXNet's operators globally), taking turns.

    python -m bench.mxnet_bf16 resnet --batch-size 64 --repeats 3
    python -m bench.mxnet_bf16 --child bf16 vgg 32 12      # one timing, as JSON

AMP casts convolutions and dense layers to bfloat16 and keeps float32
master weights (`amp.init(target_dtype='bfloat16')`, `amp.init_trainer`).
MXNet 1.9.1's oneDNN 2.4.4 runs them on AVX-512 BF16 where the CPU has it,
and predates AMX (docs/results.md, "bfloat16").
"""
import argparse
import json
import os
import subprocess
import sys
import time

from bench.timing import paired_ratio, spread

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(precision, chapter, batch_size, seconds):
    """Time training steps of `chapter`'s book network at `precision`; print JSON."""
    import d2lnets  # noqa: F401  (first: MXNet's threads)
    import mxnet as mx
    from mxnet import autograd, gluon, init, nd
    from mxnet.contrib import amp
    if precision == 'bf16':
        amp.init(target_dtype='bfloat16')
    from d2lnets.recipes import get_recipe
    recipe = get_recipe(chapter)
    settings = recipe.settings('book')
    side = settings['resize'] or 28
    mx.random.seed(0)
    net = recipe.build_net(settings)
    net.initialize(init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    X = nd.random.uniform(shape=(batch_size, 1, side, side))
    y = nd.random.randint(0, 10, shape=(batch_size,)).astype('float32')
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.01})
    if precision == 'bf16':
        amp.init_trainer(trainer)
    loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def step():
        with autograd.record():
            value = loss(net(X), y).mean()
        value.backward()
        trainer.step(1)
        value.wait_to_read()
        return value
    for _ in range(2):
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        last = step()
        steps += 1
    elapsed = time.perf_counter() - start
    print(json.dumps(dict(precision=precision, chapter=chapter,
                          images_per_s=steps * batch_size / elapsed,
                          last_loss=float(last.asscalar()))))


def rate(precision, chapter, batch_size, seconds):
    out = subprocess.run([sys.executable, '-m', 'bench.mxnet_bf16', '--child', precision, chapter,
                          str(batch_size), str(seconds)], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])['images_per_s']


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.mxnet_bf16',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('chapter', nargs='?', default='resnet')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--seconds', type=float, default=8)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--child', nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        precision, chapter, batch_size, seconds = args.child
        child(precision, chapter, int(batch_size), float(seconds))
        return
    samples = {'fp32': [], 'bf16': []}
    for _ in range(args.repeats):
        for precision in samples:
            samples[precision].append(rate(precision, args.chapter, args.batch_size,
                                           args.seconds))
    for precision, values in samples.items():
        s = spread(values)
        print(f'{args.chapter} {precision}: {s["median"]:.1f} [{s["min"]:.1f}-{s["max"]:.1f}] '
              f'images/s')
    r = paired_ratio(samples['bf16'], samples['fp32'])
    print(f'bf16/fp32: {r["median"]:.2f} [{r["min"]:.2f}-{r["max"]:.2f}]x')


if __name__ == '__main__':
    main()
