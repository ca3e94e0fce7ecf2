"""One recipe per chapter: the network it trains and the settings it trains it
with, written once and read by the chapters' command lines, the notebooks and
the benchmark.

Every recipe has four presets:

- `book`: the book's setting (learning rate, batch size, input size, epochs,
  and the model's options), as the chapter's section gives it;
- `notebook`: what a chapter's notebook trains by default on a CPU (`python
  -m chapters.X --notebook` trains the same): at most about 10 minutes on 2
  quiet cores, a clearly learned network (test accuracy 0.85 or more where
  the book reaches 0.88); where `quick` already does that, it is `quick`;
- `quick`: at most about 5 minutes on 2 quiet CPU cores (`python -m
  chapters.X --quick`), enough to see the network learn: every chapter ends
  well above chance (docs/results.md, "Quick runs"); its accuracy is not
  the book's. Smaller inputs, fewer images or epochs; for AlexNet a higher
  learning rate, for SqueezeNet the cheaper version 1.1 with simple
  bypasses at a higher learning rate;
- `smoke`: seconds (the notebooks under `D2LNETS_QUICK=1`, the tests): only
  shows that everything runs.

`notebook`, `quick` and `smoke` list only what they change from `book`.

    >>> recipe = get_recipe('vgg')
    >>> recipe.settings('quick')['resize']
    32
    >>> net = recipe.build_net(recipe.settings())
"""
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Callable, Mapping

from .models.alexnet import alexnet_book
from .models.batchnorm import lenet_bn, lenet_bn_scratch, lenet_ln
from .models.densenet import densenet_book
from .models.googlenet import googlenet
from .models.lenet import lenet
from .models.nin import nin
from .models.resnet import resnet18_book
from .models.squeezenet import squeezenet
from .models.vgg import vgg11_fashion

PRESETS = ('book', 'notebook', 'quick', 'smoke')
TRAINING_SETTINGS = ('lr', 'batch_size', 'resize', 'epochs', 'num_train', 'num_test')


class UnknownRecipeError(LookupError):
    """A chapter or preset that has no recipe."""


@dataclass(frozen=True)
class Recipe:
    """What one chapter trains and how.

    Parameters
    ----------
    chapter : str
        The chapter module's name (`python -m chapters.<chapter>`).
    title : str
        The network's name in titles and tables.
    section : str
        Where in the book: the current edition's section, then the first MXNet edition's.
    build : callable
        Builds the network from the model options (the keys of `book` that are
        not training settings).
    book, quick, smoke, notebook : mapping
        The presets (module docstring); the others override `book`; `notebook`
        defaults to `quick`.
    min_resize : int
        The smallest input side the network takes.
    book_test_acc : float or None
        The test accuracy the book's first MXNet edition printed after the
        book's setting's last epoch, trained on a GPU (None: not in the book).
    """
    chapter: str
    title: str
    section: str
    build: Callable
    book: Mapping
    quick: Mapping
    smoke: Mapping
    min_resize: int
    book_test_acc: float | None
    notebook: Mapping | None = None

    def __post_init__(self):
        if self.notebook is None:
            object.__setattr__(self, 'notebook', self.quick)
        for name in PRESETS:
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    @property
    def model_options(self):
        """The keys of `book` that go to `build`."""
        return tuple(k for k in self.book if k not in TRAINING_SETTINGS)

    def settings(self, preset='book', **overrides):
        """The preset's settings as a new dict, with `overrides` (None values ignored) on top."""
        if preset not in PRESETS:
            raise UnknownRecipeError(f'unknown preset {preset!r}; valid: {", ".join(PRESETS)}')
        settings = {'num_train': None, 'num_test': None, **self.book}
        if preset != 'book':
            settings.update(getattr(self, preset))
        unknown = set(overrides) - set(settings)
        if unknown:
            raise TypeError(f'{self.chapter} has no setting {", ".join(sorted(unknown))}; '
                            f'valid: {", ".join(settings)}')
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return settings

    def build_net(self, settings=None):
        """The network for `settings` (default: the book's)."""
        settings = self.book if settings is None else settings
        return self.build(**{k: settings[k] for k in self.model_options})

    def input_shape(self, settings=None):
        """(1, 1, side, side): one grey Fashion-MNIST example under `settings`."""
        side = (settings if settings is not None else self.book)['resize'] or 28
        return (1, 1, side, side)


NORMS = {'scratch': lenet_bn_scratch, 'concise': lenet_bn, 'layer': lenet_ln}


def lenet_with_norm(norm='scratch'):
    """LeNet with the book's from-scratch batch normalization ('scratch'),
    `nn.BatchNorm` ('concise') or layer normalization ('layer')."""
    return NORMS[norm]()

_SMOKE = dict(num_train=500, num_test=200, epochs=1)
_QUICK = dict(num_train=12000, num_test=2000, epochs=3)

RECIPES = {r.chapter: r for r in (
    # The sigmoid LeNet needs about two epochs of every image to start
    # learning; ten cost under two minutes.
    Recipe('lenet', 'LeNet', 'D2L 7.6 (5.5 in the first MXNet edition)', lenet,
           book=dict(edition='first', lr=0.9, batch_size=256, resize=None, epochs=5),
           quick=dict(epochs=10), smoke=_SMOKE,
           min_resize=16,  # two 5x5 convolutions and two 2x2 poolings
           book_test_acc=0.754),
    # At the book's lr 0.01 AlexNet's loss barely moves in a few thousand
    # steps (test acc 0.37 after 36,000 images at 96x96); 0.03 learns.
    Recipe('alexnet', 'AlexNet', 'D2L 8.1 (5.6)', alexnet_book,
           book=dict(lr=0.01, batch_size=128, resize=224, epochs=5),
           quick=dict(resize=70, lr=0.03, epochs=2), smoke=dict(_SMOKE, resize=70),
           min_resize=67,  # an 11x11 stride-4 convolution, three 3x3 stride-2 poolings
           book_test_acc=0.867),
    Recipe('vgg', 'VGG-11', 'D2L 8.2 (5.7)', vgg11_fashion,
           book=dict(ratio=4, fc_units=4096, lr=0.05, batch_size=128, resize=224, epochs=5),
           quick=dict(ratio=8, fc_units=512, resize=32, epochs=10),
           smoke=dict(_SMOKE, ratio=16, resize=32),
           min_resize=32,  # five 2x2 poolings halve 32 pixels down to 1
           book_test_acc=0.909),
    Recipe('nin', 'NiN', 'D2L 8.3 (5.8)', nin,
           book=dict(lr=0.1, batch_size=128, resize=224, epochs=5),
           quick=dict(resize=70, epochs=3), smoke=dict(_SMOKE, resize=70),
           min_resize=67,  # as AlexNet's first layers
           book_test_acc=0.812, notebook=dict(resize=70, epochs=5)),
    Recipe('googlenet', 'GoogLeNet', 'D2L 8.4 (5.9)', googlenet,
           book=dict(lr=0.1, batch_size=128, resize=96, epochs=5),
           quick=dict(resize=32, epochs=2), smoke=dict(_SMOKE, resize=32),
           min_resize=32, book_test_acc=0.883,
           # Batches of 64 learn faster per epoch at 32x32: test acc 0.661, 0.812 after
           # epochs 1 and 2 (batch 128: 0.509, 0.777, 0.803, 0.851; docs/results.md).
           notebook=dict(resize=32, batch_size=64, epochs=4)),
    Recipe('batchnorm', 'LeNet with batch normalization', 'D2L 8.5 (5.10)', lenet_with_norm,
           book=dict(norm='scratch', lr=1.0, batch_size=256, resize=None, epochs=5),
           quick=_QUICK, smoke=_SMOKE,
           min_resize=16, book_test_acc=0.870, notebook=dict(epochs=3)),
    Recipe('resnet', 'ResNet-18', 'D2L 8.6 (5.11)', resnet18_book,
           book=dict(lr=0.05, batch_size=256, resize=96, epochs=5),
           quick=dict(_QUICK, resize=32), smoke=dict(_SMOKE, resize=32),
           min_resize=32, book_test_acc=0.913,
           # One epoch of every image at 32x32: test acc 0.868 (docs/results.md).
           notebook=dict(resize=32, epochs=1)),
    Recipe('densenet', 'DenseNet', 'D2L 8.7 (5.12)', densenet_book,
           book=dict(lr=0.1, batch_size=256, resize=96, epochs=5),
           quick=dict(_QUICK, resize=32), smoke=dict(_SMOKE, resize=32),
           min_resize=32, book_test_acc=0.879, notebook=dict(resize=32, epochs=2)),
    # Not in the book: trained as the book trains NiN, whose 1x1 convolutions and
    # global-average-pooled classifier it builds on, but at lr 0.02: at NiN's 0.1
    # (and 0.05) the loss stays near ln 10 (docs/results.md). No book accuracy.
    Recipe('squeezenet', 'SqueezeNet', 'Iandola et al. 2016; trained as D2L 8.3 (5.8)',
           partial(squeezenet, num_classes=10),
           book=dict(version='1.0', bypass='none', lr=0.02, batch_size=128, resize=224, epochs=5),
           # At 32x32 conv10 sees one position per image, and at lr 0.05 the ReLU
           # after it silenced every class for 2 of 4 seeds; at 0.01 for 1 of 6, which
           # train_ch5 stops (docs/results.md, "Session 15").
           quick=dict(version='1.1', bypass='simple', lr=0.01, resize=32, epochs=6),
           smoke=dict(_SMOKE, resize=32),
           min_resize=29,  # version 1.0's 7x7 stride-2 stem, three 3x3 stride-2 poolings
           book_test_acc=None,
           notebook=dict(version='1.1', bypass='simple', lr=0.01, resize=32, epochs=12)),
)}


def get_recipe(chapter):
    """The recipe of `chapter` ('lenet', 'vgg', ...)."""
    if chapter not in RECIPES:
        raise UnknownRecipeError(f'no recipe for {chapter!r}; valid: {", ".join(RECIPES)}')
    return RECIPES[chapter]


def list_recipes():
    """The chapters that have a recipe, in the book's order."""
    return list(RECIPES)
