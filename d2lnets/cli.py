"""The command line every chapter shares.

A chapter declares its book defaults and its quick and notebook presets; the
parser fills in whatever option the user did not give (from the preset under
--quick or --notebook, else the book), checks the context and the output
directory, and answers bad input with one line and exit code 2. `run_chapter_main` turns the errors a run can
meet (no data, a diverging loss, a checkpoint that does not fit, Ctrl-C) into
one line each, leaving every finished epoch in the checkpoint. A run holds a
lock on its output directory and never overwrites an earlier run there.
"""
import contextlib
import os
import sys

import mxnet as mx
from mxnet import init

from ._args import OneLineParser, int_up_to, positive_float, positive_int, random_seed
from ._messages import first_line
from ._threads import describe_choice
from .data.batches import MAX_RESIZE, load_data_fashion_mnist
from .data.fashion_mnist import NUM_CLASSES, SPLIT_SIZES, TEXT_LABELS, DataNotFoundError
from .training.checkpoint import Checkpoint, CheckpointError, keep_earlier, option_flag
from .training.distributed import (KVSTORES, DistributedError, check_kvstore, exit_now,
                                   import_horovod, join, planned_workers)
from .training.loop import (NetworkDied, RunInterrupted, TrainingDiverged, as_context_list,
                            telling_what_is_saved, train_ch5)
from .training.outlock import OutputBusyError, OutputLock
from .viz.curves import save_history_plot
from .viz.pictures import PICTURE_FILES, save_run_pictures
from .viz.shapes import print_layer_shapes


RESIZE_LIMIT = (f'the largest side d2lnets resizes to (one batch of 128 images of '
                f'{MAX_RESIZE}x{MAX_RESIZE} already takes 512 MB)')
TRAIN_LIMIT = 'the size of the Fashion-MNIST training set'
TEST_LIMIT = 'the size of the Fashion-MNIST test set'
RUN_DEFAULTS = {'resize': None, 'num_train': None, 'num_test': None, 'seed': 0}  # of every chapter


def _describe(settings):
    return ', '.join(f'{k.replace("_", "-")} {v}' for k, v in settings.items())


def chapter_parser(chapter, description, book, quick, min_resize=None, notebook=None):
    """A parser for `python -m chapters.<chapter>`.

    `book` maps option names (dest form) to the book's defaults; `quick` and
    `notebook` (default: `quick`) map some of them to those presets. Options
    the chapter adds itself with `default=None` and a key in `book` are filled
    in the same way. A resize
    below `min_resize` (the smallest input the network takes) is refused.
    """
    parser = OneLineParser(prog=f'python -m chapters.{chapter}', description=description)
    notebook = quick if notebook is None else notebook
    parser.set_defaults(book_defaults=dict(book), presets={'quick': dict(quick),
                                                           'notebook': dict(notebook)},
                        min_resize=min_resize)
    train = parser.add_argument_group('training (default: the book\'s setting)')
    train.add_argument('--epochs', type=positive_int,
                       help=f'number of epochs (book: {book["epochs"]})')
    train.add_argument('--lr', type=positive_float,
                       help=f'learning rate of SGD (book: {book["lr"]})')
    train.add_argument('--batch-size', type=positive_int,
                       help=f'mini-batch size (book: {book["batch_size"]})')
    train.add_argument('--resize', type=int_up_to(MAX_RESIZE, RESIZE_LIMIT),
                       help=f'side the 28x28 images are resized to, at most {MAX_RESIZE} '
                            f'(book: {book["resize"] or "28, no resize"})')
    train.add_argument('--num-train', type=int_up_to(SPLIT_SIZES['train'], TRAIN_LIMIT),
                       help=f'train on a class-balanced subset of this many examples '
                            f'({NUM_CLASSES}..{SPLIT_SIZES["train"]})')
    train.add_argument('--num-test', type=int_up_to(SPLIT_SIZES['test'], TEST_LIMIT),
                       help=f'test on a class-balanced subset of this many examples '
                            f'({NUM_CLASSES}..{SPLIT_SIZES["test"]})')
    preset = train.add_mutually_exclusive_group()
    preset.add_argument('--quick', dest='preset', action='store_const', const='quick',
                        help=f'a few minutes on a CPU: {_describe(quick)}; options given '
                             f'explicitly win')
    preset.add_argument('--notebook', dest='preset', action='store_const', const='notebook',
                        help=f"what the chapter's notebook trains on a CPU, at most about "
                             f"10 minutes: {_describe(notebook)}; options given explicitly win")
    run = parser.add_argument_group('run')
    run.add_argument('--ctx', help="'cpu', 'gpu' or 'gpu:N', or a list such as 'gpu:0,gpu:1' "
                                   "to split each batch across devices (default: "
                                   "d2l.try_gpu())")
    run.add_argument('--kvstore', choices=KVSTORES,
                     help='how gradients are summed: device or local (one process, default: '
                          'device), dist_sync or dist_async (processes started by '
                          'python -m d2lnets.training.launch, each training on a shard of the data)')
    run.add_argument('--horovod', action='store_true',
                     help='average gradients with Horovod (start with horovodrun -np N); '
                          'each worker trains on a shard of the data')
    run.add_argument('--data-root', help='directory holding the four Fashion-MNIST .gz files '
                                         '(default: search, then download)')
    run.add_argument('--out', default=os.path.join('runs', chapter),
                     help='directory for history.json, curves.png and checkpoint/ '
                          '(default: %(default)s)')
    run.add_argument('--no-pictures', dest='pictures', action='store_false',
                     help='do not draw the network and its test-set errors into OUT/*.png '
                          '(saves one more pass over the test set)')
    run.add_argument('--resume', action='store_true',
                     help='continue the run checkpointed in OUT/checkpoint; an option not '
                          'given takes its value from there')
    run.add_argument('--seed', type=random_seed,
                     help=f'seeds initialisation, subsets and shuffling, 0..2**32-1 '
                          f'(default: {RUN_DEFAULTS["seed"]})')
    return parser


def parse_chapter_args(parser, argv=None):
    """Parse, fill in the options not given, resolve the context, check OUT.

    An option not given takes, with --resume, the value of the run
    checkpointed in OUT/checkpoint (the line `options taken from ...` says
    which; --quick and --notebook then change nothing); otherwise the preset's
    under --quick or --notebook, else the book's.
    """
    args = parser.parse_args(argv)
    preset = args.presets.get(args.preset, {})
    keys = list(dict.fromkeys([*args.book_defaults, *preset_keys(args), *RUN_DEFAULTS]))
    given = {key for key in keys if getattr(args, key, None) is not None}
    for key in keys:
        if key not in given:
            setattr(args, key, preset[key] if key in preset else
                    args.book_defaults.get(key, RUN_DEFAULTS.get(key)))
    if args.resume:
        settings = {key: getattr(args, key) for key in keys}
        line = take_from_checkpoint(args.out, settings, given)
        for key, value in settings.items():
            setattr(args, key, value)
        if line:
            print(line)
    size = args.resize or 28
    if args.min_resize and size < args.min_resize:
        parser.error(f'--resize {size} is below {args.min_resize}, the smallest input '
                     f'this network takes')
    for option, subset in (('--num-train', args.num_train), ('--num-test', args.num_test)):
        if subset is not None and subset < NUM_CLASSES:
            parser.error(f'{option} {subset} is below {NUM_CLASSES}: a class-balanced subset '
                         f'needs one example of each class')
    if args.data_root is not None and not os.path.isdir(os.path.expanduser(args.data_root)):
        parser.error(f'--data-root {args.data_root} is not a folder; give the folder that holds '
                     f'the data set (an empty one to download into), or leave it out to search')
    try:
        args.ctx = resolve_context(args.ctx)
        check_writable(args.out)
        if args.horovod:
            if args.kvstore:
                raise ValueError('--horovod and --kvstore exclude each other: Horovod does '
                                 'without a kvstore')
            import_horovod()
        else:
            check_kvstore(args.kvstore)
    except (ValueError, DistributedError) as err:
        parser.error(str(err))
    workers = planned_workers(args.horovod)
    if args.batch_size % workers:
        parser.error(f'--batch-size {args.batch_size} does not split evenly among {workers} '
                     f'workers; give a multiple of {workers}')
    if args.num_train is not None and args.num_train < workers:
        parser.error(f'--num-train {args.num_train} leaves nothing to train on for some of '
                     f'the {workers} workers; give at least {workers}')
    return args


def take_from_checkpoint(out, settings, given):
    """With --resume: replace each value in `settings` (option name -> value)
    whose name is not in `given` by the value of the run checkpointed in
    OUT/checkpoint, lr and epochs included. Returns the line that says which
    values were taken, or None. Nothing is taken when there is no readable
    checkpoint (the run then says why it cannot resume)."""
    checkpoint = Checkpoint(os.path.join(out, 'checkpoint'))
    try:
        meta = checkpoint.history().meta if checkpoint.exists() else {}
    except CheckpointError:
        return None
    saved = {k: v for k, v in meta.get('options', {}).items() if k != 'workers'}
    saved.update({name: meta[key] for key, name in (('lr', 'lr'), ('num_epochs', 'epochs'))
                  if key in meta})
    taken = {key: saved[key] for key in settings if key not in given and key in saved}
    settings.update(taken)
    shown = [f'{option_flag(key)} {value}' for key, value in taken.items() if value is not None]
    if not shown:
        return None
    return (f'options taken from the checkpoint in {checkpoint.directory}: '
            f'{", ".join(shown)}')


def resolve_context(spec):
    """`None` -> d2l.try_gpu(); 'cpu', 'cpu:N', 'gpu', 'gpu:N' -> that device, if
    there is one; a comma-separated list -> a list of them (data parallel)."""
    if spec is None:
        from d2l import mxnet as d2l  # imported here: it takes seconds
        return d2l.try_gpu()
    devices = [_one_context(part.strip()) for part in spec.split(',')]
    if len(set(devices)) != len(devices):
        raise ValueError(f'--ctx {spec}: a device is named twice')
    return devices[0] if len(devices) == 1 else devices


def _one_context(spec):
    kind, _, index = spec.partition(':')
    if kind not in ('cpu', 'gpu') or (index and not index.isdigit()):
        raise ValueError(f"--ctx {spec!r}: use 'cpu', 'gpu' or 'gpu:N', or a comma-separated "
                         f"list of them")
    index = int(index or 0)
    if kind == 'cpu':
        return mx.cpu(index)
    available = mx.context.num_gpus()
    if index >= available:
        found = f'{available} GPU(s) found' if available else 'no GPU found'
        raise ValueError(f'--ctx {spec}: {found} (this MXNet build or machine has none); '
                         f'use --ctx cpu')
    return mx.gpu(index)


def check_writable(directory):
    try:
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, '.write-test')
        with open(probe, 'w'):
            pass
        os.remove(probe)
    except OSError as err:
        raise ValueError(f'cannot write to --out {directory} ({err.strerror}); '
                         f'pass --out with a writable directory') from None


def train_chapter(net, args, title, log=print, load_data=None, class_names=None):
    """The book's experiment: Fashion-MNIST, Xavier initialisation, SGD, train_ch5.

    Holds a lock on OUT while it runs (a second run into OUT is refused),
    moves an earlier run out of the way into OUT/earlier/N/ unless --resume
    continues it, checkpoints every epoch into OUT/checkpoint (the best epoch
    by test accuracy in OUT/checkpoint/best.params), then writes
    OUT/history.json and OUT/curves.png. On --resume a new --lr is applied;
    other settings that differ from the checkpointed run are refused (those
    not given were taken from it by `parse_chapter_args`). Under a
    dist kvstore or Horovod each worker trains on its shard with batch_size /
    workers examples a step (so a step still averages batch_size gradients),
    all start from rank 0's initialisation, and rank 0 alone writes files.
    `load_data(batch_size, num_parts, part_index)` gives other data than
    Fashion-MNIST, whose classes are `class_names` (default: Fashion-MNIST's,
    else numbers). Unless --no-pictures, `save_run_pictures` then draws
    OUT/architecture.png and four more.
    """
    job = join(args.kvstore, args.horovod)
    with OutputLock(args.out) if job.rank == 0 else contextlib.nullcontext(), \
            telling_what_is_saved(Checkpoint(os.path.join(args.out, 'checkpoint'))):
        return _train_chapter(net, args, title, log, load_data, class_names, job)


def run_options(args, workers):
    """The settings of a chapter's run that a resume must not change: the
    model's options, input size, subsets, seed and number of workers (not
    --epochs, --lr, --ctx or where the files go)."""
    names = set(args.book_defaults) | preset_keys(args) | RUN_SETTINGS
    options = {name: getattr(args, name) for name in sorted(names - RESUMABLE)}
    options['workers'] = workers
    return options


def preset_keys(args):
    """The option names any of the chapter's presets sets."""
    return {key for preset in args.presets.values() for key in preset}


RUN_SETTINGS = set(RUN_DEFAULTS)
RESUMABLE = {'epochs', 'lr', 'batch_size'}  # batch_size: train_ch5 checks it itself
OUT_FILES = ('checkpoint', 'history.json', 'curves.png') + PICTURE_FILES


def _train_chapter(net, args, title, log, load_data, class_names, job):
    rank, workers = job.rank, job.workers
    log(describe_choice())
    if job.kind not in ('device', 'local'):
        log(f'worker rank {rank} of {workers}, {job.kind}')
    if load_data is None:
        train_iter, test_iter = load_data_fashion_mnist(
            args.batch_size // workers, resize=args.resize, root=args.data_root,
            num_train=args.num_train, num_test=args.num_test,
            ctx=as_context_list(args.ctx)[0], seed=args.seed, num_parts=workers,
            part_index=rank)
    else:
        train_iter, test_iter = load_data(args.batch_size // workers, workers, rank)
    mx.random.seed(args.seed)
    net.initialize(init.Xavier(), ctx=args.ctx)
    trainer = job.trainer(net.collect_params(), 'sgd', {'learning_rate': args.lr})
    checkpoint = Checkpoint(os.path.join(args.out, 'checkpoint'), write=rank == 0,
                            trainer_states=job.trainer_states)
    if rank == 0 and not args.resume:
        with _writing(args.out, 'move the earlier run aside in', 'then run again'):
            checkpoint.recover()
            keep_earlier(args.out, OUT_FILES, log)
    history = train_ch5(net, train_iter, test_iter, job.step_batch(args.batch_size), trainer,
                        args.ctx, args.epochs, checkpoint=checkpoint, resume=args.resume,
                        log=log, options=run_options(args, workers), seed=args.seed)
    if rank != 0:
        return history
    history.meta.update(title=title, resize=args.resize, seed=args.seed,
                        num_train=train_iter.num_examples * workers,
                        num_test=test_iter.num_examples, workers=workers, parallel=job.kind)
    with _writing(args.out, 'write history.json and curves.png to',
                  'then add --resume to finish'):
        history.save(os.path.join(args.out, 'history.json'))
        save_history_plot(history, os.path.join(args.out, 'curves.png'), title=title)
    log(f'wrote {os.path.join(args.out, "history.json")} and '
        f'{os.path.join(args.out, "curves.png")}')
    best = checkpoint.best()
    if best is not None:
        log(f'best test accuracy {best[2]:.3f} in epoch {best[1]}: its parameters are in '
            f'{best[0]}')
    if args.pictures:
        names = class_names or (TEXT_LABELS if load_data is None else None)
        paths = save_run_pictures(net, test_iter, args.ctx, args.out, None, names)
        log(f'wrote {", ".join(os.path.basename(p) for p in paths)} into {args.out}')
    return history


@contextlib.contextmanager
def _writing(out, what, then):
    """Turn an OSError (a full disk, say) into one line that says what to do."""
    try:
        yield
    except OSError as err:
        raise CheckpointError(f'cannot {what} {out} ({err.strerror or first_line(err)}); '
                              f'nothing written before is lost: free some space or fix the '
                              f'folder, {then}') from None


def chapter_main(chapter, doc, book, quick, min_resize, build, name, notebook=None):
    """The `main(argv=None)` of a chapter that adds no options of its own: print
    the network's shape table at the training input size, then train it."""
    def main(argv=None):
        parser = chapter_parser(chapter, doc.split('\n\n')[0], book, quick, min_resize, notebook)
        args = parse_chapter_args(parser, argv)
        net = build()
        print_layer_shapes(net, (1, 1, args.resize, args.resize))
        train_chapter(net, args, title=f'{name}, {args.resize}x{args.resize}')
    return main


def _after_interrupt(stop):
    """What to do after Ctrl-C: resume only when there is an epoch to resume."""
    if not isinstance(stop, RunInterrupted):
        return ('interrupted; run the command again (with --resume if the run had '
                'finished an epoch)')
    if stop.epochs_saved:
        return 'interrupted; finished epochs are in the checkpoint: add --resume to continue'
    return ('interrupted before the first epoch finished; nothing is saved yet: start the '
            'run again (without --resume)')


def run_chapter_main(main, prog):
    """Run `main()`, turning a run's foreseeable failures into one line each."""
    try:
        main()
    except KeyboardInterrupt as stop:
        print(f'{prog}: {_after_interrupt(stop)}', file=sys.stderr)
        exit_now(130)
    except (DataNotFoundError, TrainingDiverged, NetworkDied, CheckpointError,
            OutputBusyError) as err:
        print(f'{prog}: error: {err}', file=sys.stderr)
        exit_now(1)
