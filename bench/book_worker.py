"""The book's contender: its own utility package `d2lzh` (the first MXNet
edition's code, on PyPI as d2lzh 1.0.0) training a chapter network with its
`train_ch5` and its `load_data_fashion_mnist` (a DataLoader over 4 worker
processes with per-image `Resize` and `ToTensor`), in the environment a user
of the book gets: its own Python environment (d2lzh, mxnet 1.9.1, numpy
1.23.5), a fresh process, and no thread settings of d2lnets' (MXNet is
imported before anything of d2lnets, so `d2lnets._threads` leaves the
environment as it is).

`python -m bench.speed` starts it as

    <book python> -m bench.book_worker NETWORK DATA_ROOT

and then writes one line per timing request, `MIN_SECONDS MIN_STEPS`; the
worker answers each with a JSON line: images, seconds, and its peak
resident memory so far. The network is d2lnets' definition of the book's
architecture, not hybridized, as the book's `nn.Sequential` runs.

The one change to the book's code path: MXNet's FashionMNIST checks the
SHA-1 of the gzip files and downloads them again when it differs; a
packager's recompressed copy (Debian's) has the same images in different
gzip bytes, so the worker skips that check (d2lnets verifies the
decompressed bytes of the same files).
"""
import contextlib
import io
import json
import os
import sys

import mxnet as mx  # first: d2lnets must not set the threads here
from mxnet import gluon, init, nd
from mxnet.gluon.data.vision import datasets

import d2lzh

from bench.networks import LEARNING_RATE, NETWORKS
from bench.timing import TimedBatches
from d2lnets._threads import thread_settings


def _download_without_checksum(url, path=None, sha1_hash=None, **kwargs):
    name = os.path.join(path, url.split('/')[-1])
    return name if os.path.exists(name) else _download(url, path=path, **kwargs)


_download = datasets.download
datasets.download = _download_without_checksum


def peak_resident_mib():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024


def main(network, data_root):
    builder, side, batch_size, _ = NETWORKS[network]
    ctx = mx.cpu()
    train_iter, test_iter = d2lzh.load_data_fashion_mnist(
        batch_size, resize=None if side == 28 else side, root=data_root)
    X, y = next(iter(test_iter))
    one_test_batch = [(X[:2], y[:2])]
    mx.random.seed(0)
    net = builder()
    net.initialize(init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': LEARNING_RATE})
    print(json.dumps(dict(ready=True, **thread_settings(os.environ))), flush=True)
    for line in sys.stdin:
        min_seconds, min_steps = float(line.split()[0]), int(line.split()[1])
        batches = TimedBatches(train_iter, min_seconds, min_steps, sync=nd.waitall)
        with contextlib.redirect_stdout(io.StringIO()):
            d2lzh.train_ch5(net, batches, one_test_batch, batch_size, trainer, ctx, 1)
        print(json.dumps({'images': batches.images, 'seconds': batches.seconds,
                          'peak_mb': peak_resident_mib()}), flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:])
