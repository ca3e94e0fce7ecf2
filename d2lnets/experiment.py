"""A chapter's experiment in one call, from Python or a notebook, the same as
its command line runs it:

    from d2lnets.experiment import run_experiment
    net, history = run_experiment('vgg', 'quick')               # python -m chapters.vgg --quick
    net, history = run_experiment('resnet', 'book', epochs=2)  # python -m chapters.resnet --epochs 2

It takes a recipe (`d2lnets.recipes`) and a preset instead of an argparse
namespace, builds the recipe's network, and trains it through the chapters'
own `train_chapter`: Fashion-MNIST, Xavier initialisation, SGD, a checkpoint
every epoch in OUT/checkpoint (an earlier run kept in OUT/earlier/N/, a lock
on OUT, `resume=True` to continue), then history, curves and pictures in OUT.
"""
import os
from types import SimpleNamespace

from .cli import resolve_context, take_from_checkpoint, train_chapter
from .recipes import Recipe, get_recipe


def run_experiment(recipe, preset='book', *, out=None, ctx=None, resume=False, seed=None,
                   data_root=None, pictures=True, log=print, **overrides):
    """Train `recipe`'s network at `preset` ('book', 'notebook', 'quick' or 'smoke').

    Parameters
    ----------
    recipe : str or Recipe
        A chapter's name ('lenet', 'vgg', ...) or its recipe.
    preset : str
        The recipe's preset; `overrides` (lr=, epochs=, ratio=, ...) go on top.
    out : str, optional
        Where the run's files go (default: runs/<chapter>, as the chapter's).
    ctx : mxnet.Context, list of them, or str, optional
        As `--ctx` ('cpu', 'gpu:0', 'cpu:0,cpu:1'); default `d2l.try_gpu()`.
    resume, seed, data_root, pictures, log
        As the command line's `--resume`, `--seed` (default 0), `--data-root`,
        `--no-pictures` (False), and where the lines go. Resumed, every
        setting not given in `overrides` (or `seed`) takes the checkpoint's
        value, whatever the preset, and a line says which.

    Returns
    -------
    (net, History)
        The trained network and its per-epoch record.
    """
    if not isinstance(recipe, Recipe):
        recipe = get_recipe(recipe)
    out = out or os.path.join('runs', recipe.chapter)
    settings = {**recipe.settings(preset, **overrides), 'seed': 0 if seed is None else seed}
    if resume:
        given = {k for k, v in overrides.items() if v is not None}
        if seed is not None:
            given.add('seed')
        line = take_from_checkpoint(out, settings, given)
        if line:
            log(line)
    if ctx is None or isinstance(ctx, str):
        ctx = resolve_context(ctx)
    args = SimpleNamespace(**settings, ctx=ctx, kvstore=None, horovod=False, resume=resume,
                           data_root=data_root, pictures=pictures, out=out,
                           book_defaults=dict(recipe.book),
                           presets={'quick': dict(recipe.quick), 'notebook': dict(recipe.notebook)})
    net = recipe.build_net(settings)
    side = settings['resize'] or 28
    history = train_chapter(net, args, title=f'{recipe.title}, {side}x{side}', log=log)
    return net, history
