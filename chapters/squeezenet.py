"""SqueezeNet (Iandola et al., 2016, arXiv:1602.07360): no D2L section of its own;
trained as the book trains NiN (D2L section 8.3), whose 1x1 convolutions and
global-average-pooled classifier it builds on.

Prints the per-layer output shapes of SqueezeNet --version 1.0 or 1.1, with
--bypass none, simple or complex, on a 1x1x224x224 input, then trains it on
Fashion-MNIST resized to 224 with NiN's setting but a lower learning rate:
lr 0.02, batch 128, 5 epochs, SGD; the network keeps its own initialisation
(He's, and N(0, 0.01) for the output convolution; d2lnets.models.squeezenet).
It reads one channel and predicts ten classes (the registry's squeezenet1_0
etc. are ImageNet-shaped).

    python -m chapters.squeezenet --version 1.1 --bypass simple
"""
from d2lnets.cli import chapter_parser, parse_chapter_args, run_chapter_main, train_chapter
from d2lnets.models.squeezenet import BYPASSES, SPECS, Fire, squeezenet
from d2lnets.recipes import get_recipe
from d2lnets.viz.shapes import print_layer_shapes

__all__ = ['Fire', 'squeezenet', 'main']

RECIPE = get_recipe('squeezenet')  # NiN's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


def main(argv=None):
    parser = chapter_parser('squeezenet', __doc__.split('\n\n')[0], BOOK, QUICK, MIN_RESIZE,
                            NOTEBOOK)
    model = parser.add_argument_group('model')
    model.add_argument('--version', choices=sorted(SPECS),
                       help="'1.0': the paper's Table 1 (default); '1.1': 3x3 stem and "
                            "earlier pooling, 2.4x less computation")
    model.add_argument('--bypass', choices=BYPASSES,
                       help="'none' (default); 'simple': identity around Fire modules 3, 5, 7 "
                            "and 9; 'complex': also 1x1 convolutions around 2, 4, 6 and 8")
    args = parse_chapter_args(parser, argv)

    net = squeezenet(args.version, args.bypass, num_classes=10)
    print_layer_shapes(net, (1, 1, args.resize, args.resize))
    train_chapter(net, args, title=f'SqueezeNet {args.version}, {args.bypass} bypass, '
                                   f'{args.resize}x{args.resize}')


if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.squeezenet')
