"""Fine-Tuning: D2L section 14.2 (9.2 in the first MXNet edition).

A network trained on ImageNet keeps its features; its output layer is
replaced for the new classes and the whole network is trained on a folder of
photos, keeping the epoch with the best validation accuracy.

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

Every epoch is checkpointed in OUT/checkpoint; `--resume` continues it and
keeps best.params unless a later epoch does better. A run without `--resume`
moves an earlier run's best.params and checkpoint into OUT/earlier/N/.
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

import mxnet as mx
from mxnet import gluon

OUT_FILES = ('checkpoint', 'best.params')
AUGMENTATIONS = {'crop-flip': augment.random_resized_crop_flip,
                 'vgg-paper': augment.vgg_paper_train}


def parse_args(argv=None):
    parser = OneLineParser(prog='python -m chapters.finetune',
                           description=__doc__.split('\n\n')[0])
    parser.add_argument('data', help='folder with train/, val/ and classes.txt '
                                     '(python -m d2lnets.data.image_folder makes one)')
    parser.add_argument('--model', default='vgg16', help='registry name (default: vgg16)')
    parser.add_argument('--pretrained', help='ImageNet parameter file of that model '
                                             '(default: none, train from scratch)')
    parser.add_argument('--optimizer', choices=OPTIMIZERS, default='adam')
    parser.add_argument('--lr', type=positive_float, default=2e-4)
    parser.add_argument('--epochs', type=positive_int, default=5)
    parser.add_argument('--batch-size', type=positive_int, default=32)
    parser.add_argument('--augment', choices=list(AUGMENTATIONS), default='crop-flip',
                        help="training augmentation: random resized crop and flip, or the "
                             "VGG paper's scale jitter, flip and RGB shift")
    parser.add_argument('--workers', type=loader_workers, default=2,
                        help='data loader processes, 0 to load in this one (default: 2)')
    parser.add_argument('--ctx', help="'cpu' or 'gpu:N' (default: d2l.try_gpu())")
    parser.add_argument('--out', default=os.path.join('runs', 'finetune'),
                        help='directory for best.params and checkpoint/; an earlier run '
                             'there is kept in OUT/earlier/N/ (default: %(default)s)')
    parser.add_argument('--resume', action='store_true',
                        help='continue the run checkpointed in OUT/checkpoint (a new --lr '
                             'is applied; other changed options are refused)')
    parser.add_argument('--seed', type=random_seed, default=0)
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
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
