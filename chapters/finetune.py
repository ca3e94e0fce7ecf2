"""Fine-Tuning: D2L section 14.2 (9.2 in the first MXNet edition).

Without a download, on Fashion-MNIST: VGG-11 (the VGG chapter's quick
network) is pretrained on five classes (t-shirt, trouser, pullover, dress,
coat), then fine-tuned on the other five with k labelled images per class,
and the same network is trained from scratch on the same images; both are
tested on every test image of those five classes, and the gap is printed.
The pretrained network is kept in OUT/pretrained.params (its checkpoint in
OUT/pretraining), so a rerun does not pretrain again:

    python -m chapters.finetune --fashion-mnist --shots 10

With a network trained on ImageNet, its output layer is replaced for the new
classes and the whole network is trained on a folder of photos, keeping the
epoch with the best validation accuracy:

    python -m d2lnets.data.image_folder photos/ data/photos-split      # 9:1, classes.txt
    python -m chapters.finetune data/photos-split --model vgg16 \\
        --pretrained ~/.mxnet/models/vgg16-e660d456.params
    python -m d2lnets.inference.predict --model vgg16 --params runs/finetune/best.params \\
        --classes data/photos-split/classes.txt some-photo.jpg

`--pretrained` is a parameter file of the same architecture, trained on any
classes, e.g. ImageNet's 1,000 (its output layer is not used). Parameters are
matched layer by layer in order, so files saved under other layer names fit,
as long as the layers are the same (tested: MXNet's model-zoo vgg11_bn and
resnet18_v1 list their parameters with the shapes, in the order, of the
registry's vgg11_bn and resnet18). The defaults are the seed's: Adam at 2e-4.

Every epoch of the photo run is checkpointed in OUT/checkpoint; `--resume`
continues it and keeps best.params unless a later epoch does better. A run
without `--resume` moves an earlier run's best.params and checkpoint into
OUT/earlier/N/.
"""
import os
import sys

from d2lnets._messages import first_line  # d2lnets first: it sets MXNet's threads
from d2lnets._args import (OneLineParser, loader_workers, positive_float, positive_int,
                           random_seed)
from d2lnets.cli import check_writable, resolve_context, run_chapter_main
from d2lnets.training.finetune import OPTIMIZERS, ParamsMismatchError, finetune, pretrained_network
from d2lnets.data.image_folder import (CLASS_INDEX, ImageFolderDataset, ImageFolderError,
                                       skipped_report)
from d2lnets.data import augment
from d2lnets.models import UnknownModelError
from d2lnets.training.checkpoint import Checkpoint, keep_earlier
from d2lnets.training.outlock import OutputLock
from d2lnets.transfer import (DEFAULT_OUT, TransferSettings, TransferSettingsError,
                              run_transfer_experiment)

import mxnet as mx
from mxnet import gluon

OUT_FILES = ('checkpoint', 'best.params')
AUGMENTATIONS = {'crop-flip': augment.random_resized_crop_flip,
                 'vgg-paper': augment.vgg_paper_train}
FASHION = TransferSettings()
# Options left unset take their mode's default; the options of one mode are refused in the other.
PHOTO_DEFAULTS = dict(model='vgg16', optimizer='adam', lr=2e-4, epochs=5, batch_size=32,
                      augment='crop-flip', workers=2, out=os.path.join('runs', 'finetune'))
FASHION_DEFAULTS = dict(optimizer=FASHION.optimizer, lr=FASHION.lr, epochs=FASHION.epochs,
                        batch_size=FASHION.batch_size, shots=FASHION.shots,
                        pretrain_epochs=FASHION.pretrain_epochs, out=DEFAULT_OUT)
PHOTO_ONLY = ('model', 'pretrained', 'augment', 'workers', 'resume')
FASHION_ONLY = ('shots', 'pretrain_epochs')


def parse_args(argv=None):
    parser = OneLineParser(prog='python -m chapters.finetune',
                           description=__doc__.split('\n\n')[0])
    parser.add_argument('data', nargs='?',
                        help='folder with train/, val/ and classes.txt (python -m '
                             'd2lnets.data.image_folder makes one); none with --fashion-mnist')
    parser.add_argument('--fashion-mnist', action='store_true',
                        help='pretrain on five Fashion-MNIST classes, fine-tune on the other '
                             'five against training from scratch (no download)')
    fashion = parser.add_argument_group('with --fashion-mnist')
    fashion.add_argument('--shots', type=positive_int,
                         help=f'labelled training images per target class '
                              f'(default: {FASHION.shots})')
    fashion.add_argument('--pretrain-epochs', type=positive_int,
                         help=f'epochs over the source classes (default: '
                              f'{FASHION.pretrain_epochs})')
    photos = parser.add_argument_group('with a photo folder')
    photos.add_argument('--model', help='registry name (default: vgg16)')
    photos.add_argument('--pretrained', help='ImageNet parameter file of that model '
                                             '(default: none, train from scratch)')
    photos.add_argument('--augment', choices=list(AUGMENTATIONS),
                        help="training augmentation: random resized crop and flip (the "
                             "default), or the VGG paper's scale jitter, flip and RGB shift")
    photos.add_argument('--workers', type=loader_workers,
                        help='data loader processes, 0 to load in this one (default: 2)')
    photos.add_argument('--resume', action='store_true',
                        help='continue the run checkpointed in OUT/checkpoint (a new --lr '
                             'is applied; other changed options are refused)')
    parser.add_argument('--optimizer', choices=OPTIMIZERS, help='default: adam')
    parser.add_argument('--lr', type=positive_float,
                        help=f'default: {PHOTO_DEFAULTS["lr"]:g}, with --fashion-mnist '
                             f'{FASHION.lr:g}')
    parser.add_argument('--epochs', type=positive_int,
                        help=f'default: {PHOTO_DEFAULTS["epochs"]}, with --fashion-mnist '
                             f'{FASHION.epochs}')
    parser.add_argument('--batch-size', type=positive_int,
                        help=f'default: {PHOTO_DEFAULTS["batch_size"]}, with --fashion-mnist '
                             f'{FASHION.batch_size}')
    parser.add_argument('--ctx', help="'cpu' or 'gpu:N' (default: d2l.try_gpu())")
    parser.add_argument('--out',
                        help=f'directory for best.params and checkpoint/, an earlier run '
                             f'there kept in OUT/earlier/N/ (default: {PHOTO_DEFAULTS["out"]}); '
                             f'with --fashion-mnist for pretrained.params, pretraining/ and '
                             f'kK-seedS/ (default: {FASHION_DEFAULTS["out"]})')
    parser.add_argument('--seed', type=random_seed, default=0,
                        help='default: 0; with --fashion-mnist it draws the k-shot sample, the '
                             'new output layer and the shuffles (the pretraining keeps its own)')
    args = parser.parse_args(argv)
    _check_mode(parser, args)
    defaults = FASHION_DEFAULTS if args.fashion_mnist else PHOTO_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return parser, args


def _check_mode(parser, args):
    """Refuse a photo folder with --fashion-mnist, neither, and the options of
    the other mode."""
    if args.fashion_mnist and args.data is not None:
        parser.error(f'--fashion-mnist takes no photo folder (got {args.data}): leave it out, '
                     f'or drop --fashion-mnist to fine-tune on it')
    if not args.fashion_mnist and args.data is None:
        parser.error('give the photo folder DATA, or --fashion-mnist for the experiment '
                     'without a download')
    others = PHOTO_ONLY if args.fashion_mnist else FASHION_ONLY
    given = [name for name in others if getattr(args, name) not in (None, False)]
    if given:
        flags = ', '.join('--' + name.replace('_', '-') for name in given)
        if args.fashion_mnist:
            parser.error(f'{flags}: only for a photo folder, not with --fashion-mnist (whose '
                         f'pretraining resumes by itself)')
        parser.error(f'{flags}: only with --fashion-mnist, not with a photo folder')


def main(argv=None):
    parser, args = parse_args(argv)
    if args.fashion_mnist:
        run_fashion_mnist(parser, args)
    else:
        run_photo_folder(parser, args)


def run_fashion_mnist(parser, args):
    """Pretrain, fine-tune and train from scratch (d2lnets.transfer); print the gap."""
    settings = TransferSettings(shots=args.shots, epochs=args.epochs, optimizer=args.optimizer,
                                lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                pretrain_epochs=args.pretrain_epochs)
    try:
        ctx = resolve_context(args.ctx)
        check_writable(args.out)
    except ValueError as err:
        parser.error(str(err))
    try:
        result = run_transfer_experiment(settings, args.out, ctx)
    except TransferSettingsError as err:
        parser.error(str(err))
    except KeyboardInterrupt:  # not --resume's advice, which run_chapter_main gives
        print(f'{parser.prog}: interrupted; run the same command again: the pretraining goes '
              f'on after its last finished epoch, and a finished one is used as it is',
              file=sys.stderr)
        sys.exit(130)
    print(result.summary())


def run_photo_folder(parser, args):
    """Fine-tune the registry's --model on the photo folder args.data."""
    if args.pretrained and not os.path.isfile(args.pretrained):
        parser.error(f'--pretrained {args.pretrained} is not a file; give the parameter file '
                     f'of {args.model}, or leave it out to train from scratch')
    try:
        ctx = resolve_context(args.ctx)
        check_writable(args.out)
        train_set = ImageFolderDataset(os.path.join(args.data, 'train'))
        val_set = ImageFolderDataset(os.path.join(args.data, 'val'))
        mx.random.seed(args.seed)
        net = pretrained_network(args.model, args.pretrained, len(train_set.classes), ctx)
    except (ValueError, ImageFolderError, UnknownModelError, ParamsMismatchError) as err:
        parser.error(str(err))
    if train_set.classes != val_set.classes:
        parser.error(f'train/ and val/ of {args.data} hold different classes')
    for dataset in (train_set, val_set):
        note = skipped_report(dataset.root, dataset.skipped)
        if note:
            print(note)
    print(f'{len(train_set)} training and {len(val_set)} validation images, '
          f'{len(train_set.classes)} classes (see {os.path.join(args.data, CLASS_INDEX)})')
    train_iter = gluon.data.DataLoader(
        train_set.transform_first(AUGMENTATIONS[args.augment]()), args.batch_size,
        shuffle=True, num_workers=args.workers)
    val_iter = gluon.data.DataLoader(val_set.transform_first(augment.evaluation()),
                                     args.batch_size, num_workers=args.workers)
    with OutputLock(args.out):
        checkpoint = Checkpoint(os.path.join(args.out, 'checkpoint'))
        if not args.resume:
            checkpoint.recover()
            keep_earlier(args.out, OUT_FILES)
        best_path = os.path.join(args.out, 'best.params')
        options = dict(model=args.model, optimizer=args.optimizer, augment=args.augment,
                       seed=args.seed)
        try:
            _, best = finetune(net, train_iter, val_iter, args.batch_size, ctx, args.epochs,
                               optimizer=args.optimizer, lr=args.lr, best_path=best_path,
                               checkpoint=checkpoint, resume=args.resume, options=options,
                               seed=args.seed)
        except ImageFolderError as err:  # raised in a loader process, passed on by the loader
            kept = (f'; the best epoch so far is in {best_path}'
                    if os.path.exists(best_path) else '')
            print(f'{parser.prog}: error: {first_line(err)}{kept}', file=sys.stderr)
            sys.exit(1)
    print(f'best validation accuracy {best:.3f}; parameters in {best_path}')


if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.finetune')
