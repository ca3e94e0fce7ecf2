"""A worker for the launcher's tests: train a small net on fixed data with
train_ch5 over a dist kvstore (or Horovod), then save this worker's parameters.

    python tests/dist_worker.py OUT KVSTORE|horovod [--fail-rank R] [--hang-rank R] [--tag T]

Worker r of n trains on rows r, r + n, r + 2n, ... of `data()` in order, so a
step of all workers together sees the same examples as one process taking
batches of `GLOBAL_BATCH` rows of `data()` in order.
"""
import argparse
import os
import time

import mxnet as mx
import numpy as np
from mxnet import gluon, init

from d2lnets.data.batches import ImageBatches
from d2lnets.data.batches import shard_indices
from d2lnets.training.distributed import join
from d2lnets.training.loop import train_ch5

GLOBAL_BATCH = 16
NUM_EXAMPLES = 64
EPOCHS = 2


def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(NUM_EXAMPLES, 8, 8), dtype=np.uint8)
    labels = (images.reshape(NUM_EXAMPLES, -1).mean(axis=1) > 127.5).astype(np.int64)
    return images, labels


def build():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, kernel_size=3, activation='relu', in_channels=1),
            gluon.nn.Flatten(), gluon.nn.Dense(2, in_units=4 * 6 * 6))
    mx.random.seed(0)
    net.initialize(init.Xavier())
    return net


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('out')
    parser.add_argument('kvstore')
    parser.add_argument('--fail-rank', type=int)
    parser.add_argument('--hang-rank', type=int)
    parser.add_argument('--tag', help='ignored: marks the processes of one test')
    args = parser.parse_args()
    horovod = args.kvstore == 'horovod'
    job = join(None if horovod else args.kvstore, horovod=horovod)
    images, labels = data()
    index = shard_indices(len(labels), job.workers, job.rank)
    train_iter = ImageBatches(images[index], labels[index], GLOBAL_BATCH // job.workers)
    test_iter = ImageBatches(images, labels, GLOBAL_BATCH)
    net = build()
    trainer = job.trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})

    def on_epoch(history):
        if job.rank == args.fail_rank:
            raise RuntimeError(f'worker rank {job.rank} fails on purpose')
        while job.rank == args.hang_rank:
            time.sleep(1)

    train_ch5(net, train_iter, test_iter, job.step_batch(GLOBAL_BATCH), trainer, mx.cpu(),
              EPOCHS, on_epoch=on_epoch)
    net.save_parameters(os.path.join(args.out, f'rank{job.rank}.params'))


if __name__ == '__main__':
    main()
