"""Densely Connected Networks (DenseNet): D2L section 8.7, 5.12 in the first
MXNet edition.

Prints the book's DenseNet's per-layer output shapes on a 1x1x96x96 input,
then trains it on Fashion-MNIST resized to 96 with the book's setting:
lr 0.1, batch 256, 5 epochs, Xavier initialisation, SGD.

    python -m chapters.densenet
"""
from d2lnets.cli import chapter_parser, parse_chapter_args, run_chapter_main, train_chapter
from d2lnets.inspection import print_layer_shapes
from d2lnets.models.densenet import densenet_book

BOOK = dict(lr=0.1, batch_size=256, resize=96, epochs=5)
QUICK = dict(resize=32, num_train=12000, num_test=2000, epochs=3)
MIN_RESIZE = 32


def main(argv=None):
    parser = chapter_parser('densenet', __doc__.split('\n\n')[0], BOOK, QUICK, MIN_RESIZE)
    args = parse_chapter_args(parser, argv)

    net = densenet_book()
    print_layer_shapes(net, (1, 1, args.resize, args.resize))
    train_chapter(net, args, title=f'DenseNet, {args.resize}x{args.resize}')


if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.densenet')
