"""Networks with Parallel Concatenations (GoogLeNet): D2L section 8.4, 5.9 in
the first MXNet edition.

Prints GoogLeNet's per-stage output shapes on a 1x1x96x96 input, then trains
it on Fashion-MNIST resized to 96 with the book's setting: lr 0.1, batch 128,
5 epochs, Xavier initialisation, SGD.

    python -m chapters.googlenet
    python -m chapters.googlenet --dataset cifar10 --resize 32

With `--dataset cifar10` it trains the 3-channel GoogLeNet on CIFAR-10
(found or downloaded as `d2lnets.data.cifar10` says), each training image randomly
crop-resized (--crop-scale of its area) and flipped.
"""
from d2lnets._args import loader_workers
from d2lnets.cli import (chapter_parser, parse_chapter_args, positive_float, run_chapter_main,
                         train_chapter)
from d2lnets.data.batches import load_data_cifar10
from d2lnets.viz.shapes import print_layer_shapes
from d2lnets.models.googlenet import Inception, googlenet, googlenet_cifar10
from d2lnets.recipes import get_recipe

__all__ = ['Inception', 'googlenet', 'googlenet_cifar10', 'main']

RECIPE = get_recipe('googlenet')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize
CIFAR10_TRAIN_SIZE = 50000


def main(argv=None):
    parser = chapter_parser('googlenet', __doc__.split('\n\n')[0], BOOK, QUICK, MIN_RESIZE,
                            NOTEBOOK)
    data = parser.add_argument_group('data')
    data.add_argument('--dataset', choices=('fashion-mnist', 'cifar10'), default='fashion-mnist',
                      help='what to train on (default: %(default)s, as the book)')
    data.add_argument('--crop-scale', type=positive_float, default=0.08,
                      help='CIFAR-10: smallest fraction of an image a random crop keeps '
                           '(default: %(default)s)')
    data.add_argument('--workers', type=loader_workers, default=2,
                      help='CIFAR-10: data loader processes (default: %(default)s)')
    args = parse_chapter_args(parser, argv)
    if not 0 < args.crop_scale <= 1:
        parser.error(f'--crop-scale {args.crop_scale} must lie in (0, 1]')
    if args.dataset == 'cifar10' and (args.num_train or 0) > CIFAR10_TRAIN_SIZE:
        parser.error(f'--num-train {args.num_train} is above {CIFAR10_TRAIN_SIZE}, the size of '
                     f'the CIFAR-10 training set')
    if args.dataset == 'fashion-mnist':
        net, channels, load_data, name = googlenet(), 1, None, 'GoogLeNet'
    else:
        net, channels, name = googlenet_cifar10(), 3, 'GoogLeNet, CIFAR-10'

        def load_data(batch_size, num_parts, part_index):
            return load_data_cifar10(batch_size, resize=args.resize, root=args.data_root,
                                     crop_scale=(args.crop_scale, 1.0), num_train=args.num_train,
                                     num_test=args.num_test, num_parts=num_parts,
                                     part_index=part_index, num_workers=args.workers,
                                     seed=args.seed)
    print_layer_shapes(net, (1, channels, args.resize, args.resize))
    train_chapter(net, args, title=f'{name}, {args.resize}x{args.resize}', load_data=load_data)


if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.googlenet')
