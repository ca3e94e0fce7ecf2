"""The book's training loop, `train_ch5` (D2L section 7.6.2, training LeNet;
5.5 in the first MXNet edition), kept to its semantics and print format and
made faster: the network is hybridized with static memory, and the running
loss and accuracy stay on the device, read back a few times an epoch rather
than after every batch, so Python never waits on the engine mid-epoch.
Given a list of contexts it trains data-parallel, as the book's multi-GPU
chapter does (D2L section 13.6): each batch is split across the devices and
the trainer's kvstore sums their gradients. On one CPU the steps run on as
many threads as the machine's load leaves free, measured again every second
(`load_follower`).
"""
import contextlib
import math
import time
from contextlib import closing

import mxnet as mx
import numpy as np
from mxnet import autograd, nd
from mxnet.gluon import loss as gloss
from mxnet.gluon.utils import split_and_load

from .history import History
from .load_follower import LoadFollower, can_follow
from .progress import examples_in, progress_bar, show_progress

EPOCH_LINE = ('epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec, '
              '%.1f examples/sec')


class TrainingDiverged(RuntimeError):
    """The loss or a parameter became NaN or infinite, or the loss exploded."""


class NetworkDied(RuntimeError):
    """Every gradient stayed exactly zero: the network's output no longer
    depends on its parameters (each unit before the loss a ReLU that passes
    nothing), so no later step can change it."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run that checkpoints; `epochs_saved` says how many
    finished epochs its checkpoint holds (0: nothing to resume)."""

    def __init__(self, epochs_saved):
        super().__init__(epochs_saved)
        self.epochs_saved = epochs_saved


@contextlib.contextmanager
def telling_what_is_saved(checkpoint):
    """Turn a KeyboardInterrupt inside the block into RunInterrupted, which
    says whether `checkpoint` holds an epoch to resume (unchanged without one)."""
    try:
        yield
    except RunInterrupted:
        raise
    except KeyboardInterrupt:
        if checkpoint is None:
            raise
        try:
            saved = checkpoint.epochs_saved()
        except (OSError, ValueError, KeyError):  # a history that cannot be read: none to resume
            saved = 0
        raise RunInterrupted(saved) from None


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
    with closing(progress_bar(show_progress(progress), examples_in(data_iter), 'test')) as bar:
        for X, y in data_iter:
            for Xs, ys in zip(*split_batch(X, y, ctxs), strict=True):
                correct = (net(Xs).argmax(axis=1) == ys.astype('float32')).sum()
                acc_sum += correct.as_in_context(ctxs[0])
            n += y.shape[0]
            bar.update(y.shape[0])
    return acc_sum.asscalar() / n


def _nonfinite_sum(net, ctx):
    """One number on `ctx`: 0 when every parameter of `net` is finite, NaN when
    one is not (x * 0 is NaN exactly for NaN and infinity)."""
    params = [p.data(ctx) for p in net.collect_params().values()]
    return nd.add_n(*[(p * 0).sum() for p in params]) if params else nd.zeros(1, ctx=ctx)


EXPLOSION_FACTOR = 100  # the loss has exploded above this many times its first value
EXPLOSION_FLOOR = 100.0  # ... and above this, per example


def loss_limit(initial_loss):
    """The mean training loss per example above which a run has diverged:
    EXPLOSION_FACTOR times the loss of its first batch, and at least
    EXPLOSION_FLOOR (a softmax cross-entropy of 100 means the right class
    is e**100 times less likely than the one predicted)."""
    return max(EXPLOSION_FLOOR, EXPLOSION_FACTOR * initial_loss)


def _gradient_sum(net, ctx):
    """One number on `ctx`: the sum of the absolute values of every gradient
    of `net` (0: the last batch changes nothing)."""
    grads = [p.grad(ctx) for p in net.collect_params().values() if p.grad_req != 'null']
    return nd.add_n(*[g.abs().sum() for g in grads]) if grads else nd.ones(1, ctx=ctx)


DEAD_CHECKS = 3  # checks in a row with every gradient zero: the network has died


def _check_health(net, loss_sum, examples, limit, epoch, trainer, ctx):
    """Raise TrainingDiverged when the loss or a parameter is NaN or infinite
    (with ReLU a NaN weight can hide behind a finite loss), or when the mean
    loss per example of the epoch so far is above `limit`; return whether
    every gradient of the last batch was zero. One read-back."""
    loss_value, params_ok, gradients = nd.concat(
        loss_sum.as_in_context(ctx).reshape(1), _nonfinite_sum(net, ctx).reshape(1),
        _gradient_sum(net, ctx).reshape(1), dim=0).asnumpy()
    mean_loss = loss_value / max(examples, 1)
    if math.isfinite(loss_value) and math.isfinite(params_ok) and mean_loss <= limit:
        return gradients == 0
    if not math.isfinite(loss_value):
        what = f'the loss became {loss_value}'
    elif math.isfinite(params_ok):
        what = (f'the training loss exploded to {mean_loss:.4g} per example (the limit is '
                f'{limit:.4g}: {EXPLOSION_FACTOR} times its first value, at least '
                f'{EXPLOSION_FLOOR:g})')
    else:
        bad = [name for name, p in net.collect_params().items()
               if not math.isfinite((p.data(ctx) * 0).sum().asscalar())]
        what = f'parameter {bad[0]} became non-finite (NaN or infinity)'
    lr = trainer.learning_rate
    raise TrainingDiverged(f'{what} in epoch {epoch}; the learning rate {lr:g} is too high '
                           f'for this network: lower it (e.g. {lr / 10:g}); the last good '
                           f'epoch is kept in the checkpoint, if there is one')


def _died(epoch, mean_loss, trainer, checks, check_every):
    lr = trainer.learning_rate
    return NetworkDied(
        f'the network died in epoch {epoch}: every gradient was zero at {checks} checks in a '
        f'row, {check_every} batches apart, so its output no longer depends on its input '
        f'(loss {mean_loss:.4f}) and gradient descent cannot bring it back; start again with '
        f'another seed or a lower learning rate (now {lr:g}, e.g. {lr / 2:g}); the checkpoint '
        f'keeps the epochs before, if there is one')


def _epoch_seed(seed, epoch):
    """MXNet's seed for `epoch` of a run seeded with `seed` (dropout, augmentation)."""
    return (seed * 100_003 + epoch) % (2 ** 31)


def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs,
              checkpoint=None, resume=False, hybridize=True, log=print, check_every=20,
              on_epoch=None, options=None, seed=None, progress=None):
    """Train `net` with softmax cross-entropy and report each epoch as the book does.

    Parameters
    ----------
    net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs
        As in the book: `trainer.step(batch_size)` after each batch. `ctx` may be
        a list of contexts (`d2l.try_all_gpus()`): each batch is split across
        them and the trainer's kvstore keeps their parameters equal; initialise
        the net on all of them.
    checkpoint : d2lnets.training.checkpoint.Checkpoint, optional
        Saved after every epoch, as one unit. Without `resume` an earlier run
        in it is first moved to `earlier/N/` beside it.
    resume : bool
        Continue from `checkpoint` (parameters, optimizer state, history). The
        trainer's learning rate, if it differs from the saved one, is applied
        from the next epoch on (each epoch's record names its `lr`); a
        different `batch_size` or value in `options` is refused.
    hybridize : bool
        `net.hybridize(static_alloc=True, static_shape=True)` first.
    log : callable
        Called with each line of text (default `print`).
    check_every : int
        Batches between checks that the loss and the parameters are still
        finite, that the loss has not exploded (its mean per example in
        the epoch so far above `loss_limit` of the run's first batch loss)
        and that the network still learns (not every gradient zero); they
        are checked again after every epoch, before it is saved.
    on_epoch : callable, optional
        Called with the history after every epoch, e.g. `d2lnets.viz.LivePlot()`.
    options : dict, optional
        Settings of the run (model options, input size, subset sizes, seed)
        saved with it; resuming with other values is refused.
    seed : int, optional
        Reseeds MXNet and NumPy at the start of every epoch from (seed, epoch), and
        `train_iter.set_epoch(epoch)` is called when it has one, so that a
        resumed run sees the batches and random draws an uninterrupted one would.
    progress : bool, optional
        A bar inside each epoch and test pass (examples/s, time left); None:
        only in a notebook or on a terminal, not under $CI nor with another `log`
        (`d2lnets.training.progress`). The epoch lines stay the same.

    Where d2lnets chose the thread count (OMP_NUM_THREADS unset) and `net`
    trains hybridized on one CPU, the steps follow the load
    (`d2lnets.training.load_follower`): when other programs start or stop
    using the cores, the next batches run on the count they leave free, and a
    line through `log` says so. Each epoch ends with the network on `ctx`.

    Returns
    -------
    History
        One record per epoch: loss, train_acc, test_acc, time, examples_per_sec.

    Raises
    ------
    TrainingDiverged
        When the loss or a parameter becomes NaN or infinite, or the loss
        explodes past `loss_limit`; the message
        names the epoch, what went wrong and the learning rate. The epoch is
        not saved, so the checkpoint keeps the last good one.
    NetworkDied
        When every gradient is exactly zero at DEAD_CHECKS health checks in a
        row (a network whose ReLUs before the loss pass nothing: its loss
        stays where it is for good); the message names the epoch, the loss
        and the learning rate.
    CheckpointError
        When the checkpoint cannot be resumed or written.
    RunInterrupted
        On Ctrl-C (KeyboardInterrupt) with a checkpoint: it says how many
        finished epochs the checkpoint holds.
    """
    if resume and checkpoint is None:
        raise ValueError('resume=True needs the checkpoint to resume from')
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    lr = trainer.learning_rate
    options = {'batch_size': batch_size, **(options or {})}
    history = History(meta={'lr': lr, 'batch_size': batch_size, 'ctx': str(ctx),
                            'num_epochs': num_epochs, 'options': options})
    if resume:
        history = checkpoint.restore(net, trainer, ctx, options)
        history.meta.update(num_epochs=num_epochs, lr=lr)
        log(f'resuming after epoch {len(history)} from {checkpoint.directory}')
        if trainer.learning_rate != lr:
            log(f'learning rate {lr:g} from epoch {len(history) + 1} on '
                f'(the checkpoint had {trainer.learning_rate:g})')
            trainer.set_learning_rate(lr)
    elif checkpoint is not None and checkpoint.write:
        checkpoint.set_aside(log)
    log(f'training on {ctx}')
    if len(history) and 'initial_loss' not in history.meta:  # checkpointed before it was kept
        history.meta['initial_loss'] = history.epochs[0]['loss']
    limit = loss_limit(history.meta.get('initial_loss', 0.0))
    loss = gloss.SoftmaxCrossEntropyLoss()
    ctxs = as_context_list(ctx)
    show = show_progress(progress, log)
    dead_checks = 0  # health checks in a row that found every gradient zero
    home = ctxs[0]  # where the running loss and accuracy are summed
    follower = LoadFollower(net, ctxs, can_follow(ctxs, hybridize), log=log)
    with telling_what_is_saved(checkpoint), follower:
        for epoch in range(len(history) + 1, num_epochs + 1):
            loss_sum, correct = nd.zeros(1, ctx=home), nd.zeros(1, ctx=home)
            n, start = 0, time.time()
            if seed is not None:
                mx.random.seed(_epoch_seed(seed, epoch))
                np.random.seed(_epoch_seed(seed, epoch))  # Gluon's DataLoader shuffles with it
            if hasattr(train_iter, 'set_epoch'):
                train_iter.set_epoch(epoch)
            with closing(progress_bar(show, examples_in(train_iter), f'epoch {epoch}')) as bar:
                for i, (X, y) in enumerate(train_iter, 1):
                    ctxs = follower.contexts()
                    Xs, ys = split_batch(X, y, ctxs)
                    with autograd.record():
                        y_hats = [net(part) for part in Xs]
                        losses = [loss(y_hat, part).sum()
                                  for y_hat, part in zip(y_hats, ys, strict=True)]
                        idle = [_zero_loss(net, loss, Xs[0], ys[0], c) for c in ctxs[len(Xs):]]
                    autograd.backward(losses + idle)
                    trainer.step(batch_size)
                    for batch_loss, y_hat, part in zip(losses, y_hats, ys, strict=True):
                        loss_sum += batch_loss.as_in_context(home)
                        right = (y_hat.argmax(axis=1) == part.astype('float32')).sum()
                        correct += right.as_in_context(home)
                    n += y.shape[0]
                    bar.update(y.shape[0])
                    if 'initial_loss' not in history.meta:
                        history.meta['initial_loss'] = loss_sum.asscalar() / n  # one read-back
                        history.meta['input_shape'] = list(X.shape[1:])  # for a resume's check
                        limit = loss_limit(history.meta['initial_loss'])
                    if i % check_every == 0:
                        no_gradient = _check_health(net, loss_sum, n, limit, epoch, trainer,
                                                    ctxs[0])
                        dead_checks = dead_checks + 1 if no_gradient else 0
                        if dead_checks == DEAD_CHECKS:
                            raise _died(epoch, loss_sum.asscalar() / n, trainer, dead_checks,
                                        check_every)
            _check_health(net, loss_sum, n, limit, epoch, trainer, ctxs[0])
            train_time = time.time() - start
            test_acc = evaluate_accuracy(test_iter, net, ctxs, progress=show)
            follower.go_home()
            record = dict(epoch=epoch, loss=loss_sum.asscalar() / n,
                          train_acc=correct.asscalar() / n, test_acc=test_acc,
                          time=time.time() - start, examples_per_sec=n / train_time,
                          lr=trainer.learning_rate)
            history.append(**record)
            log(EPOCH_LINE % tuple(record[k] for k in ('epoch', 'loss', 'train_acc', 'test_acc',
                                                         'time', 'examples_per_sec')))
            if checkpoint is not None:
                checkpoint.save(net, trainer, history)
            if on_epoch is not None:
                on_epoch(history)
    return history
