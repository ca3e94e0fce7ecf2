"""The book's training loop, `train_ch5` (D2L section 7.6.2, training LeNet;
5.5 in the first MXNet edition), kept to its semantics and print format and
made faster: the network is hybridized with static memory, and the running
loss and accuracy stay on the device, read back a few times an epoch rather
than after every batch, so Python never waits on the engine mid-epoch.
"""
import math
import time

from mxnet import autograd, nd
from mxnet.gluon import loss as gloss

from .history import History

EPOCH_LINE = ('epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec, '
              '%.1f examples/sec')


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def evaluate_accuracy(data_iter, net, ctx):
    """Fraction of examples in `data_iter` whose arg-max prediction is the label."""
    acc_sum, n = nd.zeros(1, ctx=ctx), 0
    for X, y in data_iter:
        X, y = X.as_in_context(ctx), y.as_in_context(ctx)
        acc_sum += (net(X).argmax(axis=1) == y.astype('float32')).sum()
        n += y.size
    return acc_sum.asscalar() / n


def _check_finite(loss_sum, epoch, trainer):
    value = loss_sum.asscalar()
    if not math.isfinite(value):
        raise TrainingDiverged(f'the loss became {value} in epoch {epoch}; the learning rate '
                               f'{trainer.learning_rate:g} is too high for this network: '
                               f'lower it (e.g. {trainer.learning_rate / 10:g}) and start again')


def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs,
              checkpoint=None, resume=False, hybridize=True, log=print, check_every=20):
    """Train `net` with softmax cross-entropy and report each epoch as the book does.

    Parameters
    ----------
    net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs
        As in the book: `trainer.step(batch_size)` after each batch.
    checkpoint : d2lnets.checkpoint.Checkpoint, optional
        Saved after every epoch.
    resume : bool
        Continue from `checkpoint` (parameters, optimizer state, history).
    hybridize : bool
        `net.hybridize(static_alloc=True, static_shape=True)` first.
    log : callable
        Called with each line of text (default `print`).
    check_every : int
        Batches between checks that the loss is still finite.

    Returns
    -------
    History
        One record per epoch: loss, train_acc, test_acc, time, examples_per_sec.

    Raises
    ------
    TrainingDiverged
        When the loss becomes NaN or infinite; the message names the learning rate.
    """
    if resume and checkpoint is None:
        raise ValueError('resume=True needs the checkpoint to resume from')
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    history = History(meta={'lr': trainer.learning_rate, 'batch_size': batch_size,
                            'ctx': str(ctx), 'num_epochs': num_epochs})
    if resume:
        history = checkpoint.restore(net, trainer, ctx)
        history.meta['num_epochs'] = num_epochs
        log(f'resuming after epoch {len(history)} from {checkpoint.directory}')
    log(f'training on {ctx}')
    loss = gloss.SoftmaxCrossEntropyLoss()
    for epoch in range(len(history) + 1, num_epochs + 1):
        loss_sum, correct = nd.zeros(1, ctx=ctx), nd.zeros(1, ctx=ctx)
        n, start = 0, time.time()
        for i, (X, y) in enumerate(train_iter, 1):
            X, y = X.as_in_context(ctx), y.as_in_context(ctx)
            with autograd.record():
                y_hat = net(X)
                batch_loss = loss(y_hat, y).sum()
            batch_loss.backward()
            trainer.step(batch_size)
            loss_sum += batch_loss
            correct += (y_hat.argmax(axis=1) == y.astype('float32')).sum()
            n += y.size
            if i % check_every == 0:
                _check_finite(loss_sum, epoch, trainer)
        _check_finite(loss_sum, epoch, trainer)
        train_time = time.time() - start
        test_acc = evaluate_accuracy(test_iter, net, ctx)
        record = dict(epoch=epoch, loss=loss_sum.asscalar() / n,
                      train_acc=correct.asscalar() / n, test_acc=test_acc,
                      time=time.time() - start, examples_per_sec=n / train_time)
        history.append(**record)
        log(EPOCH_LINE % tuple(record[k] for k in ('epoch', 'loss', 'train_acc', 'test_acc',
                                                     'time', 'examples_per_sec')))
        if checkpoint is not None:
            checkpoint.save(net, trainer, history)
    return history
