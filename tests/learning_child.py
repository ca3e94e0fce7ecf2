"""Train the learning test's network in a process of its own, on one thread,
and print its history as JSON (tests/test_train.py).

    OMP_NUM_THREADS=1 python tests/learning_child.py [SEED [EPOCHS]]

(seed 0 and 2 epochs for the test; other seeds measured its spread).

oneDNN's results depend on the thread count (a different split of every
reduction) and, within one thread count, on nothing else here: two runs give
the same digits. In a fresh one-thread process the test's numbers are the
same alone, in the full suite, in any order and whatever threads pytest has.
"""
import d2lnets  # noqa: F401  (first: it sets MXNet's threads)
import json
import sys

import mxnet as mx
from mxnet import gluon, init

from d2lnets.data.batches import load_data_fashion_mnist
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg
from d2lnets.training.loop import evaluate_accuracy, train_ch5


def main(seed=0, epochs=2):
    ctx = mx.cpu()
    mx.random.seed(seed)
    train_iter, test_iter = load_data_fashion_mnist(128, resize=32, num_train=6000,
                                                    num_test=2000, seed=seed)
    net = vgg(narrow(CONV_ARCHS['A'], 8), fc_units=256, batch_norm=True)
    net.initialize(init.Xavier(), ctx=ctx)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    history = train_ch5(net, train_iter, test_iter, 128, trainer, ctx, epochs,
                        log=lambda line: None)
    print(json.dumps(dict(epochs=history.epochs,
                          evaluated=evaluate_accuracy(test_iter, net, ctx))))


if __name__ == '__main__':
    main(*(int(arg) for arg in sys.argv[1:3]))
