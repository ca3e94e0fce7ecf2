"""Deep Convolutional Neural Networks (AlexNet): D2L section 8.1, 5.6 in the
first MXNet edition.

Prints the book's AlexNet's per-layer output shapes on a 1x1x224x224 input,
then trains it on Fashion-MNIST resized to 224 with the book's setting:
lr 0.01, batch 128, 5 epochs, Xavier initialisation, SGD.

    python -m chapters.alexnet
"""
from d2lnets.cli import chapter_main, run_chapter_main
from d2lnets.models.alexnet import alexnet, alexnet_book

__all__ = ['alexnet', 'alexnet_book', 'main']

BOOK = dict(lr=0.01, batch_size=128, resize=224, epochs=5)
QUICK = dict(resize=96, num_train=12000, num_test=2000, epochs=3)
MIN_RESIZE = 67  # an 11x11 stride-4 convolution and three 3x3 stride-2 poolings


main = chapter_main('alexnet', __doc__, BOOK, QUICK, MIN_RESIZE, alexnet_book, 'AlexNet')

if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.alexnet')
