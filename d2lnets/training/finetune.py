"""Fine-tuning a trained network on new classes (D2L section 14.2), as the
seed reproduces VGG16 on a folder of flower photos.

- `load_by_order`: put the parameters of a `.params` file (for example a
  model-zoo file a user downloaded) into a network of the same architecture,
  matched in order and by shape, since the zoo names its layers differently;
  the output layer may be left out.
- `replace_output`: a new output layer for the new classes.
- `finetune`: train with `train_ch5` (Adam at 2e-4 as the seed, or SGD),
  keeping the parameters of the epoch with the best validation accuracy.
"""
import os

import mxnet as mx
from mxnet import gluon, init, nd
from mxnet.base import MXNetError
from mxnet.gluon import nn

from .._files import replacing
from ..models import get_model, model_input_shape
from ..models.classifier import Classifier
from .checkpoint import CheckpointError, write_error_reason
from .loop import as_context_list, train_ch5

OPTIMIZERS = ('adam', 'sgd')


class ParamsMismatchError(ValueError):
    """A parameter file that does not fit the network."""


def load_by_order(net, path, skip_last=0):
    """Copy the arrays of `path` into `net`'s parameters in order.

    `net` must be initialised and have run once, so that its shapes are
    known. The file's arrays and the network's parameters are paired in the
    order they were created; the last `skip_last` parameters of the network
    (2 for a new Dense output layer: weight and bias) keep their own values
    and the file's last `skip_last` arrays are ignored. Raises
    `ParamsMismatchError` naming the first pair whose shapes differ, or the
    counts when they differ.
    """
    params = list(net.collect_params().values())
    if any(0 in p.shape for p in params):
        raise ValueError('initialise the network and pass one batch through it before '
                         'loading parameters into it')
    try:
        saved = nd.load(str(path))
    except mx.base.MXNetError:
        raise ParamsMismatchError(f'{path} is not an MXNet parameter file') from None
    if not isinstance(saved, dict):
        raise ParamsMismatchError(f'{path} holds a list of arrays, not named parameters')
    names, arrays = list(saved), list(saved.values())
    if len(arrays) != len(params):
        raise ParamsMismatchError(
            f'{path} has {len(arrays)} arrays but the network has {len(params)} parameters; '
            f'it was saved from another architecture')
    keep = len(params) - skip_last
    for i, (param, array) in enumerate(zip(params[:keep], arrays[:keep], strict=True)):
        if tuple(param.shape) != array.shape:
            raise ParamsMismatchError(
                f'{path}: array {i} ({names[i]}) has shape {array.shape} but parameter '
                f'{param.name} expects {param.shape}; the file is from another architecture')
        param.set_data(array)
    return net


def replace_output(net, num_classes):
    """`net` with its output layer replaced by a new, Xavier-initialised Dense
    layer of `num_classes` outputs: for an ImageNet network laid out as the
    model zoo's (a `Classifier`), its `output` is replaced in place; for a
    HybridSequential ending in a Dense layer, a new HybridSequential of the
    same layers but the last is returned."""
    ctx = list(net.collect_params().values())[0].list_ctx()
    if isinstance(net, Classifier) and isinstance(net.output, nn.Dense):
        with net.name_scope():
            net.output = nn.Dense(num_classes, prefix='output_')
        net.output.initialize(init.Xavier(), ctx=ctx)
        return net
    if not isinstance(net, nn.HybridSequential) or not isinstance(net[-1], nn.Dense):
        raise ValueError('replace_output needs a HybridSequential ending in a Dense layer')
    new = nn.HybridSequential()
    for block in list(net)[:-1]:
        new.add(block)
    output = nn.Dense(num_classes)
    output.initialize(init.Xavier(), ctx=ctx)
    new.add(output)
    return new


def initialized_model(model, ctx, input_shape=None, **kwargs):
    """The registry's `model` (built with `kwargs`), Xavier-initialised on
    `ctx` and run once on one example of `input_shape` (C, H, W; default the
    size the registry gives the model), so that every shape is known."""
    net = get_model(model, **kwargs)
    net.initialize(init.Xavier(), ctx=ctx)
    shape = tuple(input_shape or model_input_shape(model))
    net(nd.zeros((1,) + shape, ctx=as_context_list(ctx)[0]))
    return net


def pretrained_network(model, pretrained, num_classes, ctx, input_shape=None, **kwargs):
    """The registry's `model` (built with `kwargs`, for inputs of
    `input_shape` as in `initialized_model`), with the parameters of the file
    `pretrained` if given (all but the output layer's), and a new output layer
    of `num_classes`.

    Loading draws no random numbers, so after the same `mx.random.seed` a
    network with `pretrained` and one without get the same new output layer.
    """
    net = initialized_model(model, ctx, input_shape, **kwargs)
    if pretrained:
        load_by_order(net, os.path.expanduser(pretrained), skip_last=2)
    return replace_output(net, num_classes)


def make_trainer(net, optimizer='adam', lr=2e-4):
    if optimizer not in OPTIMIZERS:
        raise ValueError(f'optimizer {optimizer!r}: use one of {", ".join(OPTIMIZERS)}')
    params = {'learning_rate': lr}
    if optimizer == 'sgd':
        params['momentum'] = 0.9
    # A list keeps the network's order; given the ParameterDict, Trainer sorts by
    # name, so saved optimizer states would not fit a rebuilt net whose layer
    # numbers sort differently (dense9, dense11) and a resume would fail.
    return gluon.Trainer(list(net.collect_params().values()), optimizer, params)


def _save_best(net, path, epoch, checkpointed):
    """Write `net`'s parameters to `path` (through a temporary file); a failure
    (a full disk) is a CheckpointError of one line, which says to resume when
    the epoch is `checkpointed`."""
    try:
        with replacing(path) as tmp:
            net.save_parameters(tmp)
    except (OSError, MXNetError) as err:
        then = ('its checkpoint is saved: free some space or fix the folder, then add '
                '--resume to continue' if checkpointed else
                'free some space or fix the folder, then run again')
        raise CheckpointError(f'cannot write the best epoch ({epoch}) to {path} '
                              f'({write_error_reason(err)}); {then}') from None


def finetune(net, train_iter, val_iter, batch_size, ctx, num_epochs, optimizer='adam',
             lr=2e-4, best_path=None, log=print, on_epoch=None, checkpoint=None, resume=False,
             options=None, seed=None):
    """Fine-tune `net` and save the parameters of its best validation epoch
    to `best_path` (when given); `on_epoch` as in `train_ch5` (e.g. a
    LivePlot). Returns (history, best validation accuracy).

    `checkpoint`, `resume`, `options` and `seed` are `train_ch5`'s: resumed,
    a run replaces `best_path` only with an epoch better than every earlier
    one, its checkpointed epochs included; if the run was stopped between
    saving its best epoch's checkpoint and `best_path`, that file is made
    again from the checkpoint.
    """
    trainer = make_trainer(net, optimizer, lr)
    if resume and checkpoint is not None and best_path is not None:
        accs = checkpoint.history().column('test_acc')
        if accs and accs.index(max(accs)) == len(accs) - 1:
            checkpoint.copy_parameters(best_path)

    def keep_best(history):
        *earlier, acc = history.column('test_acc')
        if not earlier or acc > max(earlier):
            if best_path is not None:
                os.makedirs(os.path.dirname(os.path.abspath(best_path)), exist_ok=True)
                _save_best(net, best_path, len(history),
                           checkpoint is not None and checkpoint.write)
                log(f'best validation accuracy so far ({acc:.3f}): saved {best_path}')
        if on_epoch is not None:
            on_epoch(history)

    history = train_ch5(net, train_iter, val_iter, batch_size, trainer, ctx, num_epochs,
                        log=log, on_epoch=keep_best, checkpoint=checkpoint, resume=resume,
                        options=options, seed=seed)
    return history, max(history.column('test_acc'), default=-1.0)
