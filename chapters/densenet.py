"""Densely Connected Networks (DenseNet): D2L section 8.7, 5.12 in the first
MXNet edition.

Prints the book's DenseNet's per-layer output shapes on a 1x1x96x96 input,
then trains it on Fashion-MNIST resized to 96 with the book's setting:
lr 0.1, batch 256, 5 epochs, Xavier initialisation, SGD.

    python -m chapters.densenet
"""
from d2lnets.cli import chapter_main, run_chapter_main
from d2lnets.models.densenet import (DenseBlock, conv_block, densenet, densenet_book,
                                     transition_block)
from d2lnets.recipes import get_recipe

__all__ = ['conv_block', 'DenseBlock', 'transition_block', 'densenet', 'densenet_book', 'main']

RECIPE = get_recipe('densenet')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


main = chapter_main('densenet', __doc__, BOOK, QUICK, MIN_RESIZE, densenet_book, 'DenseNet',
                    notebook=NOTEBOOK)

if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.densenet')
