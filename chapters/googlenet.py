"""Networks with Parallel Concatenations (GoogLeNet): D2L section 8.4, 5.9 in
the first MXNet edition.

Prints GoogLeNet's per-stage output shapes on a 1x1x96x96 input, then trains
it on Fashion-MNIST resized to 96 with the book's setting: lr 0.1, batch 128,
5 epochs, Xavier initialisation, SGD.

    python -m chapters.googlenet
"""
from d2lnets.cli import chapter_main, run_chapter_main
from d2lnets.models.googlenet import googlenet

BOOK = dict(lr=0.1, batch_size=128, resize=96, epochs=5)
QUICK = dict(resize=32, num_train=12000, num_test=2000, epochs=3)
MIN_RESIZE = 32


main = chapter_main('googlenet', __doc__, BOOK, QUICK, MIN_RESIZE, googlenet, 'GoogLeNet')

if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.googlenet')
