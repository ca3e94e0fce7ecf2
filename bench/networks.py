"""The networks the benchmark trains, at the book's input size and batch size,
read from the chapters' recipes (`d2lnets.recipes`).

Importing this module does not set d2lnets' thread settings when MXNet is
already loaded, so the book's contender (`bench.book_worker`) can import it
after MXNet and keep the environment a user of the book has.
"""
from d2lnets.recipes import get_recipe, list_recipes

# Where the benchmark builds another variant than the chapter's default: the
# hybridizable nn.BatchNorm (the from-scratch layer is an imperative Block, and
# PyTorch's twin is built from nn.BatchNorm), and SqueezeNet 1.1, the cheaper one.
VARIANTS = {'batchnorm': dict(norm='concise'), 'squeezenet': dict(version='1.1')}
LEARNING_RATE = 0.01


def _network(chapter):
    """(builder, input side, batch size, in the book) of the chapter's book setting."""
    recipe = get_recipe(chapter)
    settings = recipe.settings('book', **VARIANTS.get(chapter, {}))
    return (lambda: recipe.build_net(settings), settings['resize'] or 28,
            settings['batch_size'], recipe.book_test_acc is not None)


NETWORKS = {chapter: _network(chapter) for chapter in list_recipes()}
