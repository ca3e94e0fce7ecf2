"""Each chapter's settings are written once, in d2lnets.recipes, and the
chapters train what their recipe says."""
import importlib

import pytest

from d2lnets.recipes import PRESETS, RECIPES, UnknownRecipeError, get_recipe, list_recipes
from d2lnets.viz.shapes import layer_table

# The book's settings, typed once more here on purpose: a change to a recipe must be seen.
BOOK = {
    'lenet': dict(edition='first', lr=0.9, batch_size=256, resize=None, epochs=5),
    'alexnet': dict(lr=0.01, batch_size=128, resize=224, epochs=5),
    'vgg': dict(ratio=4, fc_units=4096, lr=0.05, batch_size=128, resize=224, epochs=5),
    'nin': dict(lr=0.1, batch_size=128, resize=224, epochs=5),
    'googlenet': dict(lr=0.1, batch_size=128, resize=96, epochs=5),
    'batchnorm': dict(norm='scratch', lr=1.0, batch_size=256, resize=None, epochs=5),
    'resnet': dict(lr=0.05, batch_size=256, resize=96, epochs=5),
    'densenet': dict(lr=0.1, batch_size=256, resize=96, epochs=5),
    'squeezenet': dict(version='1.0', bypass='none', lr=0.02, batch_size=128, resize=224, epochs=5),
}


@pytest.mark.parametrize('chapter', list(BOOK))
def test_the_book_settings(chapter):
    assert dict(get_recipe(chapter).book) == BOOK[chapter]


@pytest.mark.parametrize('chapter', list_recipes())
def test_the_chapter_reads_its_recipe(chapter):
    module = importlib.import_module(f'chapters.{chapter}')
    recipe = get_recipe(chapter)
    assert module.BOOK is recipe.book and module.QUICK is recipe.quick
    assert module.NOTEBOOK is recipe.notebook
    assert module.MIN_RESIZE == recipe.min_resize


@pytest.mark.parametrize('chapter', list_recipes())
@pytest.mark.parametrize('preset', PRESETS)
def test_every_preset_builds_a_network_that_takes_its_input(chapter, preset):
    recipe = get_recipe(chapter)
    settings = recipe.settings(preset)
    assert settings['resize'] is None or settings['resize'] >= recipe.min_resize
    net = recipe.build_net(settings)
    if chapter == 'batchnorm' and settings['norm'] == 'scratch':
        return  # the book's from-scratch BatchNorm is an imperative Block: no symbolic shapes
    assert layer_table(net, recipe.input_shape(settings))[-1].output_shape == (1, 10)


def test_presets_override_the_book_and_overrides_win():
    recipe = get_recipe('vgg')
    assert recipe.settings('quick') == dict(BOOK['vgg'], ratio=8, fc_units=512, resize=32,
                                            epochs=10, num_train=None, num_test=None)
    assert recipe.settings('smoke', epochs=2, lr=None)['epochs'] == 2
    assert recipe.settings('smoke', lr=None)['lr'] == 0.05  # None leaves the preset's value


def test_the_model_options_reach_the_builder():
    recipe = get_recipe('vgg')
    narrow = layer_table(recipe.build_net(recipe.settings('book', ratio=16)), (1, 1, 224, 224))
    wide = layer_table(recipe.build_net(recipe.settings('book', ratio=4)), (1, 1, 224, 224))
    assert narrow[0].output_shape == (1, 4, 112, 112) and wide[0].output_shape == (1, 16, 112, 112)
    lenet_first = get_recipe('lenet').build_net()
    lenet_later = get_recipe('lenet').build_net(get_recipe('lenet').settings(edition='later'))
    assert layer_table(lenet_first, (1, 1, 28, 28))[0].output_shape == (1, 6, 24, 24)
    assert layer_table(lenet_later, (1, 1, 28, 28))[0].output_shape == (1, 6, 28, 28)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownRecipeError, match='valid: lenet, alexnet'):
        get_recipe('lenet5')
    with pytest.raises(UnknownRecipeError, match='valid: book, notebook, quick, smoke'):
        get_recipe('vgg').settings('fast')
    with pytest.raises(TypeError, match='no setting ratios'):
        get_recipe('vgg').settings(ratios=2)


def test_recipes_cannot_be_changed_by_accident():
    with pytest.raises(TypeError):
        RECIPES['vgg'].book['lr'] = 1.0
