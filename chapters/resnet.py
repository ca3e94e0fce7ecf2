"""Residual Networks (ResNet): D2L section 8.6, 5.11 in the first MXNet edition.

Prints the book's ResNet-18's per-layer output shapes on a 1x1x96x96 input,
then trains it on Fashion-MNIST resized to 96 with the book's setting:
lr 0.05, batch 256, 5 epochs, Xavier initialisation, SGD.

    python -m chapters.resnet
"""
from d2lnets.cli import chapter_main, run_chapter_main
from d2lnets.models.resnet import Residual, resnet18_book, resnet_block
from d2lnets.recipes import get_recipe

__all__ = ['Residual', 'resnet_block', 'resnet18_book', 'main']

RECIPE = get_recipe('resnet')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


main = chapter_main('resnet', __doc__, BOOK, QUICK, MIN_RESIZE, resnet18_book, 'ResNet-18',
                    notebook=NOTEBOOK)

if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.resnet')
