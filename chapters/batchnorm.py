"""Batch Normalization: D2L section 8.5, 5.10 in the first MXNet edition.

Prints the per-layer output shapes of LeNet with batch normalisation on a
1x1x28x28 input, then trains it on Fashion-MNIST with the book's setting:
lr 1.0, batch 256, 5 epochs, Xavier initialisation, SGD, and prints the scale
and shift the first normalisation layer learned. --norm picks the book's
from-scratch layer (the default, as the book starts), MXNet's nn.BatchNorm
('concise') or layer normalisation ('layer') for comparison.

    python -m chapters.batchnorm --norm concise
"""
from d2lnets.cli import chapter_parser, parse_chapter_args, run_chapter_main, train_chapter
from d2lnets.viz.shapes import print_layer_shapes
from d2lnets.models.batchnorm import BatchNorm, batch_norm, lenet_bn, lenet_bn_scratch, lenet_ln
from d2lnets.recipes import NORMS, get_recipe

__all__ = ['batch_norm', 'BatchNorm', 'lenet_bn_scratch', 'lenet_bn', 'lenet_ln', 'main']

RECIPE = get_recipe('batchnorm')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


def main(argv=None):
    parser = chapter_parser('batchnorm', __doc__.split('\n\n')[0], BOOK, QUICK, MIN_RESIZE,
                            NOTEBOOK)
    parser.add_argument_group('model').add_argument(
        '--norm', choices=sorted(NORMS),
        help="'scratch': the book's BatchNorm (default); 'concise': nn.BatchNorm; "
             "'layer': layer normalisation")
    args = parse_chapter_args(parser, argv)
    size = args.resize or 28

    net = NORMS[args.norm]()
    # The from-scratch BatchNorm is an imperative Block, whose shapes cannot be inferred
    # symbolically; lenet_bn has the same layers with nn.BatchNorm, so the same shapes.
    print_layer_shapes(lenet_bn() if args.norm == 'scratch' else net, (1, 1, size, size))
    train_chapter(net, args, title=f'LeNet with {args.norm} normalisation, {size}x{size}')
    first_norm = net[1]
    print('gamma', first_norm.gamma.data().reshape((-1,)).asnumpy())
    print('beta ', first_norm.beta.data().reshape((-1,)).asnumpy())


if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.batchnorm')
