"""Networks Using Blocks (VGG): D2L section 8.2, 5.7 in the first MXNet edition.

Prints the per-layer output shapes of VGG-11 on a 1x1x224x224 input, as the
book does, then trains VGG-11 narrowed by --ratio on Fashion-MNIST with the
book's setting: lr 0.05, batch 128, images resized to 224, 5 epochs, Xavier
initialisation, SGD.

    python -m chapters.vgg --ratio 4
"""
from d2lnets.cli import (chapter_parser, parse_chapter_args, positive_int, run_chapter_main,
                         train_chapter)
from d2lnets.viz.shapes import print_layer_shapes
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg, vgg_block
from d2lnets.recipes import get_recipe

__all__ = ['vgg_block', 'vgg', 'main']

RECIPE = get_recipe('vgg')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


def main(argv=None):
    parser = chapter_parser('vgg', __doc__.split('\n\n')[0], BOOK, QUICK, MIN_RESIZE,
                            NOTEBOOK)
    model = parser.add_argument_group('model')
    model.add_argument('--ratio', type=positive_int,
                       help=f'divide every block\'s channels by this (book: {BOOK["ratio"]}); '
                            f'must divide 64')
    model.add_argument('--fc-units', type=positive_int,
                       help=f'width of the two hidden fully-connected layers '
                            f'(book: {BOOK["fc_units"]})')
    args = parse_chapter_args(parser, argv)
    if 64 % args.ratio:
        parser.error(f'--ratio {args.ratio} does not divide 64; use 1, 2, 4, 8, 16, 32 or 64')

    conv_arch = CONV_ARCHS['A']
    print_layer_shapes(vgg(conv_arch), (1, 1, 224, 224))

    small_conv_arch = narrow(conv_arch, args.ratio)
    net = vgg(small_conv_arch, fc_units=args.fc_units)
    train_chapter(net, args, title=f'VGG-11, channels / {args.ratio}, {args.fc_units} FC units, '
                                   f'{args.resize}x{args.resize}')


if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.vgg')
