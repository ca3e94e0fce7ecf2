"""Convolutional Neural Networks (LeNet): D2L section 7.6, 5.5 in the first MXNet edition.

Prints LeNet's per-layer output shapes on a 1x1x28x28 input, then trains it on
Fashion-MNIST with the first MXNet edition's setting: lr 0.9, batch 256,
5 epochs, Xavier initialisation, SGD. --edition later pads the first
convolution and pools by averaging, as later editions do.

    python -m chapters.lenet
"""
from d2lnets.cli import chapter_parser, parse_chapter_args, run_chapter_main, train_chapter
from d2lnets.viz.shapes import print_layer_shapes
from d2lnets.models.lenet import EDITIONS, lenet
from d2lnets.recipes import get_recipe

__all__ = ['lenet', 'main']

RECIPE = get_recipe('lenet')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


def main(argv=None):
    parser = chapter_parser('lenet', __doc__.split('\n\n')[0], BOOK, QUICK, MIN_RESIZE,
                            NOTEBOOK)
    parser.add_argument_group('model').add_argument(
        '--edition', choices=sorted(EDITIONS),
        help="'first': no padding, max pooling (book's first MXNet edition, the default); "
             "'later': padding 2, average pooling")
    args = parse_chapter_args(parser, argv)
    size = args.resize or 28

    net = lenet(args.edition)
    print_layer_shapes(net, (1, 1, size, size))
    train_chapter(net, args, title=f'LeNet ({args.edition} edition), {size}x{size}')


if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.lenet')
