"""Residual Networks (ResNet): D2L section 8.6, 5.11 in the first MXNet edition.

Prints the book's ResNet-18's per-layer output shapes on a 1x1x96x96 input,
then trains it on Fashion-MNIST resized to 96 with the book's setting:
lr 0.05, batch 256, 5 epochs, Xavier initialisation, SGD.

    python -m chapters.resnet
"""
from d2lnets.cli import chapter_main, run_chapter_main
from d2lnets.models.resnet import Residual, resnet18_book, resnet_block

__all__ = ['Residual', 'resnet_block', 'resnet18_book', 'main']

BOOK = dict(lr=0.05, batch_size=256, resize=96, epochs=5)
QUICK = dict(resize=32, num_train=12000, num_test=2000, epochs=3)
MIN_RESIZE = 32


main = chapter_main('resnet', __doc__, BOOK, QUICK, MIN_RESIZE, resnet18_book, 'ResNet-18')

if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.resnet')
