"""Network in Network (NiN): D2L section 8.3, 5.8 in the first MXNet edition.

Prints NiN's per-layer output shapes on a 1x1x224x224 input, then trains it
on Fashion-MNIST resized to 224 with the book's setting: lr 0.1, batch 128,
5 epochs, Xavier initialisation, SGD.

    python -m chapters.nin
"""
from d2lnets.cli import chapter_main, run_chapter_main
from d2lnets.models.nin import nin, nin_block
from d2lnets.recipes import get_recipe

__all__ = ['nin_block', 'nin', 'main']

RECIPE = get_recipe('nin')  # the book's setting and the presets, in d2lnets.recipes
BOOK, QUICK, NOTEBOOK = RECIPE.book, RECIPE.quick, RECIPE.notebook
MIN_RESIZE = RECIPE.min_resize


main = chapter_main('nin', __doc__, BOOK, QUICK, MIN_RESIZE, nin, 'NiN',
                    notebook=NOTEBOOK)

if __name__ == '__main__':
    run_chapter_main(main, 'python -m chapters.nin')
