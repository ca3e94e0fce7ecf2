"""Fine-tuning against training from scratch, without a download (D2L
section 14.2, "Fine-Tuning"; 9.2 in the first MXNet edition).

The book fine-tunes a network pretrained on ImageNet; here the source task is
five Fashion-MNIST classes and the target task the other five, with k
labelled images per class (`d2lnets.data.class_split`):

1. `pretrain`: train the network on every training image of the source
   classes, checkpointed in OUT/pretraining; its parameters go to
   OUT/pretrained.params, and a later run with the same settings uses them
   instead of pretraining again;
2. `train_target` with that file: copy everything but the output layer into
   a fresh network with a new 5-way output layer (`pretrained_network`),
   and fine-tune it on the k-shot sample;
3. `train_target` without it: the same network, the same new output layer
   (same seed), the same images, optimizer, epochs and batch, from scratch;
4. both are tested after every epoch on every test image of the target
   classes; the gap is the difference of their last epochs' accuracies.

    >>> result = run_transfer_experiment(TransferSettings(shots=10))
    >>> print(result.summary())
"""
import os
import time
from dataclasses import dataclass, field

import mxnet as mx
from mxnet import gluon, nd

from ._files import replacing, save_figure
from .data.class_split import (SOURCE_CLASSES, TARGET_CLASSES, check_classes, class_names,
                               load_task)
from .recipes import get_recipe
from .training.checkpoint import Checkpoint, CheckpointError, keep_earlier
from .training.finetune import OPTIMIZERS, finetune, initialized_model, pretrained_network
from .training.history import History
from .training.loop import as_context_list, train_ch5
from .training.outlock import OutputLock
from .viz.curves import plot_side_by_side

_VGG_QUICK = get_recipe('vgg').settings('quick')  # the VGG chapter's quick run
DEFAULT_OUT = os.path.join('runs', 'finetune-fashion')
PRETRAINED = 'pretrained.params'
PRETRAINING = 'pretraining'  # the pretraining's checkpoint, in OUT


class TransferSettingsError(ValueError):
    """Settings the experiment cannot run with, found before anything is trained."""


@dataclass(frozen=True)
class TransferSettings:
    """What the experiment trains, and how.

    The network and its pretraining are the VGG chapter's quick run
    (`d2lnets.recipes`: VGG-11 with channels / 8 and 512-unit dense layers,
    32x32 inputs, SGD at 0.05, batch 128) on the source classes, for
    `pretrain_epochs`. The fine-tuned and the scratch network are trained
    alike: `optimizer` at `lr`, `batch_size`, `epochs` over the k-shot sample.

    Attributes
    ----------
    shots : int
        Labelled training images per target class (k).
    seed : int
        Draws the k-shot sample, the new output layer (the same for both
        networks) and the training's shuffles and dropout.
    num_source_train, num_source_test, num_target_test : int, optional
        Class-balanced subsets, for quick runs (default: every image).
    pretrain_seed : int
        Seeds the pretraining, so that every `seed` shares one pretrained network.
    """
    shots: int = 10
    epochs: int = 20
    optimizer: str = 'adam'
    lr: float = 1e-3
    batch_size: int = 16
    seed: int = 0
    model: str = 'vgg11_fashion'
    model_options: dict = field(default_factory=lambda: {
        'ratio': _VGG_QUICK['ratio'], 'fc_units': _VGG_QUICK['fc_units']})
    resize: int = _VGG_QUICK['resize']
    pretrain_epochs: int = 5
    pretrain_lr: float = _VGG_QUICK['lr']
    pretrain_batch_size: int = _VGG_QUICK['batch_size']
    pretrain_seed: int = 0
    source_classes: tuple = SOURCE_CLASSES
    target_classes: tuple = TARGET_CLASSES
    num_source_train: int | None = None
    num_source_test: int | None = None
    num_target_test: int | None = None

    @property
    def input_shape(self):
        """One example's (C, H, W)."""
        return (1, self.resize, self.resize)

    def pretraining_options(self):
        """The settings that make a pretrained network, as its checkpoint keeps
        them (JSON values: lists, not tuples); another value means another network."""
        return {'model': self.model, 'model_options': dict(self.model_options),
                'resize': self.resize, 'lr': self.pretrain_lr,
                'source_classes': list(self.source_classes),
                'num_source_train': self.num_source_train,
                'num_source_test': self.num_source_test, 'seed': self.pretrain_seed}


SMOKE_SETTINGS = TransferSettings(
    shots=2, epochs=2, batch_size=5, model_options={'ratio': 16, 'fc_units': 64},
    pretrain_epochs=1, num_source_train=500, num_source_test=100, num_target_test=100)
"""Seconds, for the notebook under D2LNETS_QUICK=1 and the tests: it only shows
that everything runs."""


@dataclass
class TransferResult:
    """Both trainings on the target task, and the pretraining they started from.

    Attributes
    ----------
    settings : TransferSettings
        What was trained, and how.
    pretraining, finetuned, scratch : History
        Per epoch: loss, train and test accuracy (the pretraining's on the
        source classes, the others' on every test image of the target classes).
    finetuned_net, scratch_net : mxnet.gluon.Block
        The two networks after their last epoch.
    """
    settings: TransferSettings
    pretraining: History
    finetuned: History
    scratch: History
    finetuned_net: object
    scratch_net: object

    @property
    def finetuned_acc(self):
        """The fine-tuned network's target test accuracy after its last epoch."""
        return self.finetuned.epochs[-1]['test_acc']

    @property
    def scratch_acc(self):
        """The scratch network's target test accuracy after its last epoch."""
        return self.scratch.epochs[-1]['test_acc']

    @property
    def gap(self):
        """How much more of the target test set the fine-tuned network gets right."""
        return self.finetuned_acc - self.scratch_acc

    def summary(self):
        """One line: both accuracies and the gap."""
        s = self.settings
        return (f'target test accuracy after {s.epochs} epochs on {s.shots} images per class: '
                f'fine-tuned {self.finetuned_acc:.3f}, from scratch {self.scratch_acc:.3f}, '
                f'gap {self.gap:+.3f}')


def pretrain(settings, out, ctx, log=print, on_epoch=None):
    """The network trained on the source classes, in OUT/pretrained.params.

    A checkpoint in OUT/pretraining of the same `pretraining_options` is
    used as it is when it holds `pretrain_epochs` epochs, and resumed when it
    holds fewer; any other (other settings, more epochs, damaged) is moved
    with its pretrained.params into OUT/earlier/N/ and the network is
    pretrained afresh. Returns the pretraining's History.
    """
    checkpoint = Checkpoint(os.path.join(out, PRETRAINING))
    path = os.path.join(out, PRETRAINED)
    names = ', '.join(class_names(settings.source_classes))
    saved = _saved_pretraining(checkpoint, settings, log)
    if saved is not None and len(saved) == settings.pretrain_epochs and os.path.isfile(path):
        log(f'using the network pretrained on {names} in {path} ({len(saved)} epoch(s), '
            f'source test acc {saved.epochs[-1]["test_acc"]:.3f})')
        return saved
    if saved is None:
        checkpoint.recover()
        keep_earlier(out, (PRETRAINING, PRETRAINED), log)
    train_iter, test_iter = load_task(
        settings.pretrain_batch_size, settings.source_classes, seed=settings.pretrain_seed,
        resize=settings.resize, ctx=as_context_list(ctx)[0],
        num_train=settings.num_source_train, num_test=settings.num_source_test)
    log(f'pretraining on the source classes ({names}): {train_iter.num_examples} training '
        f'images')
    mx.random.seed(settings.pretrain_seed)
    net = initialized_model(settings.model, ctx, settings.input_shape,
                            num_classes=len(settings.source_classes), **settings.model_options)
    trainer = gluon.Trainer(list(net.collect_params().values()), 'sgd',
                            {'learning_rate': settings.pretrain_lr})
    history = train_ch5(net, train_iter, test_iter, settings.pretrain_batch_size, trainer, ctx,
                        settings.pretrain_epochs, checkpoint=checkpoint,
                        resume=saved is not None, log=log, on_epoch=on_epoch,
                        options=settings.pretraining_options(), seed=settings.pretrain_seed)
    with replacing(path) as tmp:
        net.save_parameters(tmp)
    log(f'wrote {path}')
    return history


def _saved_pretraining(checkpoint, settings, log):
    """The History in `checkpoint` when it is a pretraining of `settings` that
    `pretrain` can use or resume; None otherwise (said in a line when there
    is a checkpoint)."""
    if not checkpoint.exists():
        return None
    try:
        history = checkpoint.history()
    except CheckpointError as err:
        log(f'pretraining again: {err}')
        return None
    options = {'batch_size': settings.pretrain_batch_size, **settings.pretraining_options()}
    if history.meta.get('options') != options:
        log(f'pretraining again: {checkpoint.directory} holds a network pretrained with '
            f'other settings')
        return None
    if len(history) > settings.pretrain_epochs:
        log(f'pretraining again: {checkpoint.directory} holds {len(history)} epochs, more '
            f'than the {settings.pretrain_epochs} asked for')
        return None
    return history


def target_network(settings, pretrained, ctx):
    """The network for the target task: with `pretrained` (the parameter file
    `pretrain` writes), every layer but the output copied from it; without,
    Xavier-initialised from `settings.seed`. Either way a new output layer of
    one output per target class, drawn from `settings.seed`, so the
    fine-tuned and the scratch network get the same one."""
    mx.random.seed(settings.seed)
    net = pretrained_network(settings.model, pretrained, len(settings.target_classes), ctx,
                             settings.input_shape, **settings.model_options)
    net(nd.zeros((1,) + settings.input_shape, ctx=as_context_list(ctx)[0]))  # draws the new layer
    return net


def train_target(settings, train_iter, test_iter, pretrained, ctx, log=print, on_epoch=None):
    """Train `target_network(settings, pretrained, ctx)` on the target task:
    fine-tuning with `pretrained`, from scratch without. Returns (net,
    History); `on_epoch` as in `train_ch5`."""
    net = target_network(settings, pretrained, ctx)
    history, _ = finetune(net, train_iter, test_iter, settings.batch_size, ctx, settings.epochs,
                          optimizer=settings.optimizer, lr=settings.lr, log=log,
                          on_epoch=on_epoch, seed=settings.seed)
    return net, history


def run_transfer_experiment(settings=TransferSettings(), out=DEFAULT_OUT, ctx=None, log=print):
    """Pretrain (or reuse the pretrained network in `out`), fine-tune, train
    from scratch, and write both histories and their curves side by side to
    OUT/k{shots}-seed{seed}/. Holds a lock on `out` meanwhile.

    Parameters
    ----------
    settings : TransferSettings
    out : str
        The run folder: pretraining/ (its checkpoint), pretrained.params, and
        one folder per k and seed.
    ctx : mxnet.Context, optional
        Default: the CPU.
    log : callable
        Called with every line (default `print`).

    Returns
    -------
    TransferResult

    Raises
    ------
    TransferSettingsError
        In one line, for settings that cannot run (classes in both tasks,
        more shots than a class has images, ...), before anything is trained.
    """
    ctx = ctx or mx.cpu()
    try:
        check_classes(settings.source_classes, settings.target_classes)
        for name in ('epochs', 'pretrain_epochs'):
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive whole number, got {value!r}')
        if settings.optimizer not in OPTIMIZERS:
            raise ValueError(f'optimizer {settings.optimizer!r}: use one of '
                             f'{", ".join(OPTIMIZERS)}')
        train_iter, test_iter = load_task(settings.batch_size, settings.target_classes,
                                          shots=settings.shots, seed=settings.seed,
                                          resize=settings.resize, ctx=as_context_list(ctx)[0],
                                          num_test=settings.num_target_test)
    except ValueError as err:
        raise TransferSettingsError(str(err)) from None
    with OutputLock(out):
        pretraining = pretrain(settings, out, ctx, log)
        names = ', '.join(class_names(settings.target_classes))
        runs = {}
        for name, pretrained in (('fine-tuned', os.path.join(out, PRETRAINED)),
                                 ('from scratch', None)):
            log(f'{name} on {settings.shots} images of each target class ({names}); tested '
                f'on {test_iter.num_examples}')
            start = time.time()
            runs[name] = train_target(settings, train_iter, test_iter, pretrained, ctx, log)
            log(f'{name}: {time.time() - start:.1f} s')
        result = TransferResult(settings, pretraining, runs['fine-tuned'][1],
                                runs['from scratch'][1], runs['fine-tuned'][0],
                                runs['from scratch'][0])
        folder = os.path.join(out, f'k{settings.shots}-seed{settings.seed}')
        os.makedirs(folder, exist_ok=True)
        result.finetuned.save(os.path.join(folder, 'finetuned.json'))
        result.scratch.save(os.path.join(folder, 'scratch.json'))
        save_figure(plot_side_by_side({'fine-tuned': result.finetuned,
                                       'from scratch': result.scratch}),
                    os.path.join(folder, 'curves.png'), dpi=120)
        log(f'wrote finetuned.json, scratch.json and curves.png into {folder}')
    return result
