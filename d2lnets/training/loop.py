"""The book's training loop, `train_ch5` (D2L section 7.6.2, training LeNet;
5.5 in the first MXNet edition), kept to its semantics and print format and
made faster: the network is hybridized with static memory, and the running
loss and accuracy stay on the device, read back a few times an epoch rather
than after every batch, so Python never waits on the engine mid-epoch.
Given a list of contexts it trains data-parallel, as the book's multi-GPU
chapter does (D2L section 13.6): each batch is split across the devices and
the trainer's kvstore sums their gradients.
"""
import math
import time

from mxnet import autograd, nd
from mxnet.gluon import loss as gloss
from mxnet.gluon.utils import split_and_load

from .history import History
from .progress import examples_in, progress_bar, show_progress

EPOCH_LINE = ('epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec, '
              '%.1f examples/sec')


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def as_context_list(ctx):
    """`ctx` as a list: one context, or several (as `d2l.try_all_gpus()` gives)."""
    ctxs = list(ctx) if isinstance(ctx, (list, tuple)) else [ctx]
    if not ctxs:
        raise ValueError('no context to train on: give mx.cpu(), a GPU, or a list of them')
    return ctxs


def split_batch(X, y, ctxs):
    """Split a batch across `ctxs` (fewer when the batch has fewer examples)."""
    ctxs = ctxs[:X.shape[0]]
    return (split_and_load(X, ctxs, even_split=False),
            split_and_load(y, ctxs, even_split=False))


def _zero_loss(net, loss, X, y, ctx):
    """A loss of exactly zero on `ctx`, for a device that a batch smaller than the
    number of devices leaves without examples: its gradient is zero, and fresh,
    so the kvstore's sum stays right and every copy is updated alike."""
    return loss(net(X[:1].as_in_context(ctx)), y[:1].as_in_context(ctx)).sum() * 0


def evaluate_accuracy(data_iter, net, ctx, progress=None):
    """Fraction of examples in `data_iter` whose arg-max prediction is the label;
    `ctx` is a context or a list of them. `progress`: as in `train_ch5`."""
    ctxs = as_context_list(ctx)
    acc_sum, n = nd.zeros(1, ctx=ctxs[0]), 0
    bar = progress_bar(show_progress(progress), examples_in(data_iter), 'test')
    for X, y in data_iter:
        for Xs, ys in zip(*split_batch(X, y, ctxs), strict=True):
            correct = (net(Xs).argmax(axis=1) == ys.astype('float32')).sum()
            acc_sum += correct.as_in_context(ctxs[0])
        n += y.shape[0]
        bar.update(y.shape[0])
    bar.close()
    return acc_sum.asscalar() / n


def _check_finite(loss_sum, epoch, trainer):
    value = loss_sum.asscalar()
    if not math.isfinite(value):
        raise TrainingDiverged(f'the loss became {value} in epoch {epoch}; the learning rate '
                               f'{trainer.learning_rate:g} is too high for this network: '
                               f'lower it (e.g. {trainer.learning_rate / 10:g}) and start again')


def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs,
              checkpoint=None, resume=False, hybridize=True, log=print, check_every=20,
              on_epoch=None, progress=None):
    """Train `net` with softmax cross-entropy and report each epoch as the book does.

    Parameters
    ----------
    net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs
        As in the book: `trainer.step(batch_size)` after each batch. `ctx` may be
        a list of contexts (`d2l.try_all_gpus()`): each batch is split across
        them and the trainer's kvstore keeps their parameters equal; initialise
        the net on all of them.
    checkpoint : d2lnets.training.checkpoint.Checkpoint, optional
        Saved after every epoch.
    resume : bool
        Continue from `checkpoint` (parameters, optimizer state, history).
    hybridize : bool
        `net.hybridize(static_alloc=True, static_shape=True)` first.
    log : callable
        Called with each line of text (default `print`).
    check_every : int
        Batches between checks that the loss is still finite.
    on_epoch : callable, optional
        Called with the history after every epoch, e.g. `d2lnets.viz.LivePlot()`.
    progress : bool, optional
        A bar inside each epoch and test pass (examples/s, time left); None:
        only in a notebook or on a terminal, not under $CI nor with another `log`
        (`d2lnets.training.progress`). The epoch lines stay the same.

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
    ctxs = as_context_list(ctx)
    show = show_progress(progress, log)
    for epoch in range(len(history) + 1, num_epochs + 1):
        loss_sum, correct = nd.zeros(1, ctx=ctxs[0]), nd.zeros(1, ctx=ctxs[0])
        n, start = 0, time.time()
        bar = progress_bar(show, examples_in(train_iter), f'epoch {epoch}')
        for i, (X, y) in enumerate(train_iter, 1):
            Xs, ys = split_batch(X, y, ctxs)
            with autograd.record():
                y_hats = [net(part) for part in Xs]
                losses = [loss(y_hat, part).sum() for y_hat, part in zip(y_hats, ys, strict=True)]
                idle = [_zero_loss(net, loss, Xs[0], ys[0], c) for c in ctxs[len(Xs):]]
            autograd.backward(losses + idle)
            trainer.step(batch_size)
            for batch_loss, y_hat, part in zip(losses, y_hats, ys, strict=True):
                loss_sum += batch_loss.as_in_context(ctxs[0])
                right = (y_hat.argmax(axis=1) == part.astype('float32')).sum()
                correct += right.as_in_context(ctxs[0])
            n += y.shape[0]
            bar.update(y.shape[0])
            if i % check_every == 0:
                _check_finite(loss_sum, epoch, trainer)
        bar.close()
        _check_finite(loss_sum, epoch, trainer)
        train_time = time.time() - start
        test_acc = evaluate_accuracy(test_iter, net, ctx, progress=show)
        record = dict(epoch=epoch, loss=loss_sum.asscalar() / n,
                      train_acc=correct.asscalar() / n, test_acc=test_acc,
                      time=time.time() - start, examples_per_sec=n / train_time)
        history.append(**record)
        log(EPOCH_LINE % tuple(record[k] for k in ('epoch', 'loss', 'train_acc', 'test_acc',
                                                     'time', 'examples_per_sec')))
        if checkpoint is not None:
            checkpoint.save(net, trainer, history)
        if on_epoch is not None:
            on_epoch(history)
    return history
