"""Deep Convolutional Neural Networks (AlexNet): D2L section 8.1, 5.6 in the
first MXNet edition.

Prints the book's AlexNet's per-layer output shapes on a 1x1x224x224 input,
then trains it on Fashion-MNIST resized to 224 with the book's setting:
lr 0.01, batch 128, 5 epochs, Xavier initialisation, SGD.

    python -m chapters.alexnet
"""
from d2lnets.cli import chapter_main, run_chapter_main
from d2lnets.models.alexnet import alexnet, alexnet_book
from d2lnets.recipes import get_recipe

__all__ = ['alexnet', 'alexnet_book', 'main']

RECIPE = get_recipe('alexnet')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


main = chapter_main('alexnet', __doc__, BOOK, QUICK, MIN_RESIZE, alexnet_book, 'AlexNet',
                    notebook=NOTEBOOK)

if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.alexnet')
