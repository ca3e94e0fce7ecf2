"""The numbers the chapter notebooks' prose states are the numbers the library computes
(issue 28, item 1).

Each `Claim` is a notebook, a phrase of its markdown with `{}` fields, and a function of the
library (receptive fields, output sizes, parameter counts, multiply-adds, channel counts,
ratios, the recipes' settings, the rates typed into the notebook's own estimate cells) that
returns what goes into the fields. The phrase, filled in, must be in the notebook's markdown
(whitespace runs read as one space), so a change to the code or to the text that makes them
disagree fails here. A claim whose function asserts instead of returning (the phrase is a
qualitative statement the library must keep true, such as "no block sees the whole image")
fails when the assertion does.
"""
import functools
import glob
import inspect
import math
import os
import re
import string
from dataclasses import dataclass
from typing import Callable

import nbformat
import numpy as np
import pytest

import d2lnets  # noqa: F401  (before MXNet: its thread settings)
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

from chapters.finetune import PHOTO_DEFAULTS
from d2lnets.models import get_model
from d2lnets.models.alexnet import alexnet_book
from d2lnets.models.batchnorm import BatchNorm
from d2lnets.models.densenet import DenseBlock, densenet_book
from d2lnets.models.googlenet import INCEPTIONS, Inception, googlenet
from d2lnets.models.lenet import lenet
from d2lnets.models.nin import nin
from d2lnets.models.resnet import Residual, resnet18_book
from d2lnets.models.squeezenet import SPECS, Fire, squeezenet
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg, vgg11_fashion, vgg_block
from d2lnets.recipes import get_recipe
from d2lnets.transfer import SMOKE_SETTINGS, TransferSettings
from d2lnets.viz.calculators import conv_output_size, receptive_field, stacked_params_ratio
from d2lnets.viz.shapes import count_parameters, layer_table, multiply_adds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, 'notebooks')
EPOCH = 60_000           # Fashion-MNIST's training images
TRAIN_FLOPS = 3 * 2      # per multiply-add: 2 FLOPs, and a training step is about 3 forward passes
FRACTIONS = {4: 'quarter', 5: 'fifth', 8: 'eighth', 9: 'ninth', 12: 'twelfth', 16: 'sixteenth'}


@functools.lru_cache(maxsize=None)
def _notebook(name):
    return nbformat.read(os.path.join(NOTEBOOKS, name + '.ipynb'), as_version=4)


@functools.lru_cache(maxsize=None)
def markdown(name):
    """The notebook's markdown, every run of whitespace one space."""
    text = '\n'.join(c.source for c in _notebook(name).cells if c.cell_type == 'markdown')
    return re.sub(r'\s+', ' ', text)


def code_number(name, pattern):
    """The number `pattern`'s group matches in the notebook's code cells (exactly once)."""
    code = '\n'.join(c.source for c in _notebook(name).cells if c.cell_type == 'code')
    found = re.findall(pattern, code, re.MULTILINE)
    assert len(found) == 1, f'{name}: {pattern!r} matches {len(found)} times in the code'
    return float(found[0])


def cpu_rate(name):
    """The CPU rate (FLOP/s) typed into the notebook's time-estimate cell."""
    return code_number(name, r'^cpu = ([\d.e]+)\s')


def tex(n):
    """A whole number as the notebooks typeset it in LaTeX: 6{,}400."""
    return f'{n:,}'.replace(',', '{,}')


def arrows(sides, sep=r' \to '):
    return sep.join(map(str, sides))


def fraction(ratio):
    """'a sixteenth' for a ratio of about 16."""
    return FRACTIONS[round(ratio)]


def require(condition, message):
    assert condition, message


@functools.lru_cache(maxsize=None)
def table(builder, shape, *args):
    return tuple(layer_table(builder(*args), shape))


@functools.lru_cache(maxsize=None)
def macs(builder, shape, *args):
    return multiply_adds(builder(*args), shape)


@functools.lru_cache(maxsize=None)
def params(builder, shape, *args):
    return count_parameters(builder(*args), shape)


def sides(rows):
    return [r.output_shape[-1] for r in rows if len(r.output_shape) == 4]


def weights(block):
    """Parameters of `block` without its biases (layers built with their input sizes)."""
    block.initialize()
    return sum(int(np.prod(p.shape)) for n, p in block.collect_params().items()
               if not n.endswith('bias'))


# ---------------------------------------------------------------------------- LeNet

def lenet_layers_kernel_stride():
    """(kernel, stride) of first-edition LeNet's convolutions and poolings, in order."""
    return [(b._kwargs['kernel'][0], b._kwargs['stride'][0]) for b in lenet('first')
            if 'kernel' in getattr(b, '_kwargs', {})]


def lenet_receptive_field_terms():
    terms, jump = [], 1
    for kernel, stride in lenet_layers_kernel_stride():
        terms.append(rf'{kernel - 1} \cdot {jump}')
        jump *= stride
    return ' + '.join(terms), receptive_field(lenet('first'))


def lenet_conv_params():
    rows = table(lenet, (1, 1, 28, 28), 'first')
    convs = sum(r.params for r in rows if r.name.startswith('conv'))
    return f'{math.ceil(convs / 100) * 100:,}'


def sigmoid_bound():
    x = np.linspace(-8, 8, 1601)
    s = 1 / (1 + np.exp(-x))
    return round(1 / (s * (1 - s)).max())


# ---------------------------------------------------------------------------- AlexNet

def alexnet_rows():
    return table(alexnet_book, (1, 1, 224, 224))


def alexnet_dense(i):
    return [r for r in alexnet_rows() if r.name.startswith('dense')][i].params


def alexnet_convs_below_first_dense():
    convs = sum(r.params for r in alexnet_rows() if r.name.startswith('conv'))
    require(convs < alexnet_dense(0), 'the first dense layer no longer outweighs the convolutions')


def alexnet_first_dense_millions():
    alexnet_convs_below_first_dense()
    return alexnet_dense(0) / 1e6


def alexnet_pool_sides():
    pools = [r.output_shape[-1] for r in alexnet_rows() if r.name.startswith('pool')]
    first = alexnet_rows()[0].output_shape[-1]
    return [first] + pools


# ---------------------------------------------------------------------------- VGG

def vgg11_rows():
    return table(vgg, (1, 1, 224, 224), CONV_ARCHS['A'])


def vgg11_blocks_params(conv_arch):
    return sum(r.params for r in table(vgg, (1, 1, 224, 224), conv_arch)
               if not r.name.startswith(('dense', 'dropout')))


def vgg11_first_dense():
    return next(r for r in vgg11_rows() if r.name.startswith('dense')).params


def vgg_features_macs(conv_arch):
    features = nn.HybridSequential()
    for block in conv_arch:
        features.add(vgg_block(*block))
    return multiply_adds(features, (1, 1, 224, 224))


def vgg_narrowing():
    full, narrowed = CONV_ARCHS['A'], narrow(CONV_ARCHS['A'], 4)
    by_params = vgg11_blocks_params(full) / vgg11_blocks_params(narrowed)
    by_macs = vgg_features_macs(full) / vgg_features_macs(narrowed)
    require(fraction(by_params) == fraction(by_macs),
            'weights and multiply-adds shrink differently')
    return fraction(by_params)


def vgg_block_receptive_fields():
    layers, fields = [], []
    for num_convs, _ in CONV_ARCHS['A']:
        layers += [(3, 1)] * num_convs + [(2, 2)]
        fields.append(receptive_field(layers))
    return fields


def no_vgg_block_sees_the_image():
    require(max(vgg_block_receptive_fields()) < 224,
            f'a block sees the whole image now: {vgg_block_receptive_fields()}')


def vgg_epoch_minutes():
    ratio = get_recipe('vgg').book['ratio']
    count = macs(vgg, (1, 1, 224, 224), narrow(CONV_ARCHS['A'], ratio))
    return round(EPOCH * TRAIN_FLOPS * count / cpu_rate('3-vgg') / 60)


def vgg16_vs_alexnet():
    vgg16 = macs(get_model, (1, 3, 224, 224), 'vgg16')
    alexnet = macs(get_model, (1, 3, 224, 224), 'alexnet_imagenet')
    return f'{vgg16 / 1e9:.1f}', round(vgg16 / alexnet), f'{alexnet / 1e9:.2f}'


def vgg_last_sides():
    """The last block's side at 224 and at the smallest input VGG takes (32)."""
    side = get_recipe('vgg').min_resize
    small = sides(table(vgg, (1, 1, side, side), narrow(CONV_ARCHS['A'], 16)))
    return sides(vgg11_rows())[-1], sides(vgg11_rows())[-1], small[-1], small[-1], side, side


def vgg_block_conv_params():
    conv = table(vgg_block, (1, 64, 112, 112), 2, 128)[0]
    require(conv.params == 9 * 64 * 128 + 128, 'the block\'s first convolution changed')


# ---------------------------------------------------------------------------- NiN

def nin_rows(side=224):
    return table(nin, (1, 1, side, side))


def nin_head():
    last = [r for r in nin_rows() if r.output_shape[1:] == (10, 5, 5)]
    require(len(last) == 1, 'NiN no longer ends in one block of 10 channels of 5x5')
    return round(last[0].params / 1e3)


def nin_last_block_side(side=224):
    return nin_rows(side)[-3].output_shape[-1]  # before global pooling and Flatten


def alexnet_head_weights():
    head = nn.HybridSequential()
    head.add(nn.Dense(4096, in_units=6400), nn.Dense(4096, in_units=4096),
             nn.Dense(10, in_units=4096))
    head_weights = weights(head)
    require(sum(alexnet_dense(i) for i in range(3)) - 4096 - 4096 - 10 == head_weights,
            'the book\'s AlexNet head is not 6,400 -> 4096 -> 4096 -> 10')
    return round(head_weights / 1e6)


def nin_vs_alexnet_macs():
    ratio = macs(nin, (1, 1, 224, 224)) / macs(alexnet_book, (1, 1, 224, 224))
    return (f'{macs(nin, (1, 1, 224, 224)) / 1e9:.2f}', FRACTIONS[round(1 / (1 - ratio))] + 's',
            f'{macs(alexnet_book, (1, 1, 224, 224)) / 1e9:.2f}')


# ---------------------------------------------------------------------------- GoogLeNet

def block_3a():
    return Inception(*INCEPTIONS[3][0])


def unreduced_3a():
    c1, (_, c2), (_, c3), c4 = INCEPTIONS[3][0]
    block = HybridConcurrent(axis=1)
    pool = nn.HybridSequential()
    pool.add(nn.MaxPool2D(pool_size=3, strides=1, padding=1), nn.Conv2D(c4, kernel_size=1))
    block.add(nn.Conv2D(c1, kernel_size=1), nn.Conv2D(c2, kernel_size=3, padding=1),
              nn.Conv2D(c3, kernel_size=5, padding=2), pool)
    return block


def inception_3a_ratio():
    with_reductions = macs(block_3a, (1, 192, 28, 28))
    without = macs(unreduced_3a, (1, 192, 28, 28))
    return without / with_reductions


def path_5x5(reduced):
    path = nn.HybridSequential()
    if reduced:
        path.add(nn.Conv2D(16, kernel_size=1))
    path.add(nn.Conv2D(32, kernel_size=5, padding=2))
    return multiply_adds(path, (1, 192, 28, 28))


def googlenet_rows():
    return table(googlenet, (1, 1, 96, 96))


def googlenet_stage_sides_and_channels():
    rows = googlenet_rows()[:5]
    return arrows([96] + [r.output_shape[-1] for r in rows[:4]]), \
        ', '.join(str(r.output_shape[1]) for r in rows[1:4]) + f' and {rows[4].output_shape[1]}'


def inception_3a_channels():
    c1, (_, c2), (_, c3), c4 = INCEPTIONS[3][0]
    out = table(block_3a, (1, 192, 28, 28))[0].output_shape[1]
    require(out == c1 + c2 + c3 + c4, 'block 3a\'s output is not the sum of its paths')
    return c1, c2, c3, c4, out


def measured_rate(name, images_per_second, builder, shape, *args):
    """`images_per_second`, once the estimate cell's CPU rate is checked to be that many
    training images a second (within 5%)."""
    sustained = images_per_second * TRAIN_FLOPS * macs(builder, shape, *args)
    require(abs(sustained / cpu_rate(name) - 1) < 0.05,
            f'{images_per_second} images/s is {sustained / 1e9:.0f} GFLOP/s, not the cell\'s rate')
    return images_per_second


def epoch_minutes(name, builder, shape):
    return round(EPOCH * TRAIN_FLOPS * macs(builder, shape) / cpu_rate(name) / 60)


# ---------------------------------------------------------------------------- batch norm

def bn_default(name):
    return inspect.signature(BatchNorm).parameters[name].default


def bn_numbers_per_feature():
    norm = BatchNorm(6, 4)
    norm.initialize()
    return count_parameters(norm, (1, 6, 8, 8)) // 6


def book_setting(chapter, resize=False):
    book = get_recipe(chapter).book
    side = (book['resize'],) * 2 if resize else ()
    return (f'{book["lr"]}', book['batch_size']) + side + (book['epochs'],)


# What a preset changes from the book's setting, in words: (when its value is lower, when higher).
# None stands for every image (num_train, num_test) or the images' own 28x28 (resize).
CHANGES = {'ratio': ('wider blocks', 'narrower blocks'),
           'fc_units': ('smaller dense layers', 'larger dense layers'),
           'lr': ('a lower learning rate', 'a higher learning rate'),
           'batch_size': ('smaller batches', 'larger batches'),
           'resize': ('a smaller input', 'a larger input'),
           'num_train': ('fewer training images', None),
           'num_test': ('fewer test images', None),
           'epochs': ('fewer epochs', 'more epochs')}
CHOICES = {'version': 'SqueezeNet {}', 'bypass': '{} bypasses', 'norm': '{} normalisation'}
UNSET = {'resize': 28, 'num_train': EPOCH, 'num_test': 10_000}


def preset_changes(chapter, preset='notebook'):
    """What `preset` changes from the book's setting, in words and without its numbers (which
    are tuned): 'a smaller input and fewer epochs'. The notebooks say it of their default on
    a CPU, so a preset that changes differently fails here until the text says so."""
    recipe = get_recipe(chapter)
    book, other = recipe.settings('book'), recipe.settings(preset)
    words = []
    for name in [n for n in book if n in CHOICES] + list(CHANGES):
        was, now = book.get(name), other.get(name)
        if was == now:
            continue
        if name in CHOICES:
            words.append(CHOICES[name].format(now))
        else:
            was, now = (UNSET.get(name) if v is None else v for v in (was, now))
            word = CHANGES[name][now > was]
            require(word is not None, f'{chapter}: no words for a {preset} preset with more {name}')
            words.append(word)
    unknown = {n for n in book if book[n] != other[n]} - set(CHANGES) - set(CHOICES)
    require(not unknown, f'{chapter}: give words to the change of {", ".join(sorted(unknown))}')
    require(words, f'{chapter}: the {preset} preset is the book\'s setting')
    return words[0] if len(words) == 1 else ', '.join(words[:-1]) + ' and ' + words[-1]


def default_claims(name, chapter):
    """What every chapter notebook says of the setting its training cell trains on a CPU."""
    return [Claim(name, "Against the book's setting, the `notebook` preset trains with {}. Its "
                        "numbers are",  # the next sentence follows: nothing left of an older one
                  lambda: preset_changes(chapter)),
            Claim(name, '(`python -m chapters.{} --notebook` trains the same', lambda: chapter)]


# ---------------------------------------------------------------------------- ResNet

def resnet_rows():
    return table(resnet18_book, (1, 1, 96, 96))


def resnet_sides():
    layers = [r for r in resnet_rows() if not r.name.startswith(('batchnorm', 'relu'))]
    before_pooling = sides(layers)[:-1]  # the last is global average pooling's 1x1
    return ', '.join(map(str, before_pooling[:-1])) + f' and {before_pooling[-1]}'


def resnet_layers_with_weights():
    def walk(block):
        kwargs = getattr(block, '_kwargs', {})
        if isinstance(block, nn.Dense) or ('kernel' in kwargs and isinstance(block, nn.Conv2D)
                                           and kwargs['kernel'] != (1, 1)):
            yield block
        for child in block._children.values():
            yield from walk(child)
    return len(list(walk(resnet18_book())))


def resnet_last_stage_share():
    stages = [r for r in resnet_rows() if r.name.startswith('hybridsequential')]
    share = stages[-1].params / sum(r.params for r in resnet_rows())
    return f'{share:.0%}'


def resnet_rate_matches_images_per_second():
    rate = code_number('7-resnet', r"\('2-core CPU, \d+ GFLOP/s', ([\d.e]+)\)")
    sustained = 101 * TRAIN_FLOPS * macs(resnet18_book, (1, 1, 96, 96))
    require(abs(sustained / rate - 1) < 0.05,
            f'101 images/s is {sustained / 1e9:.0f} GFLOP/s, not the estimate cell\'s rate')
    return round(rate / 1e9)


# ---------------------------------------------------------------------------- DenseNet

def densenet_channels():
    rows = table(densenet_book, (1, 1, 96, 96))
    require(rows[3].output_shape[1] == 64, 'the stem no longer gives 64 channels')
    return arrows([r.output_shape[1] for r in rows[4:11]])


def resnet_vs_densenet_params():
    resnet, densenet = params(resnet18_book, (1, 1, 96, 96)), params(densenet_book, (1, 1, 96, 96))
    return resnet / 1e6, densenet / 1e6, round(resnet / densenet)


# ---------------------------------------------------------------------------- SqueezeNet

def squeezenet_macs(imagenet):
    if imagenet:
        return macs(squeezenet, (1, 3, 224, 224), '1.0')
    return multiply_adds(squeezenet('1.0', num_classes=10), (1, 1, 224, 224))


def squeezenet_vs_vgg11(imagenet):
    own = squeezenet_macs(imagenet)
    vgg11 = macs(get_model, (1, 3, 224, 224), 'vgg11') if imagenet else \
        macs(vgg, (1, 1, 224, 224), CONV_ARCHS['A'])
    return f'{own / 1e9:.2f}', fraction(vgg11 / own), f'{vgg11 / 1e9:.2f}'


def squeezenet_rate():
    images_per_second = code_number('9-squeezenet', r'^cpu = ([\d.]+) \* 3 \* 2')
    return images_per_second * TRAIN_FLOPS * multiply_adds(
        squeezenet('1.1', num_classes=10), (1, 1, 224, 224))


def squeezenet_epoch():
    seconds = EPOCH * TRAIN_FLOPS * squeezenet_macs(False) / squeezenet_rate()
    return round(squeezenet_rate() / 1e9), round(seconds / 60), round(5 * seconds / 3600)


def fire2():
    squeeze, expand1, expand3 = 96 * 16 + 16, 16 * 64 + 64, 9 * 16 * 64 + 64
    total = count_parameters(Fire(16, 64), (1, 96, 55, 55))
    require(squeeze + expand1 + expand3 == total, 'Fire 2 is not squeeze + two expands')
    plain = 9 * 96 * 128 + 128
    return tex(squeeze), tex(expand1), tex(expand3), tex(total), tex(plain), f'{plain / total:.1f}'


def squeeze_widths():
    widths = [layer[1] for layer in SPECS['1.0'][1] if layer != 'pool']
    return min(widths), max(widths)


def pooling_path(image, ceil_mode):
    path = [conv_output_size(image, 7, stride=2)]
    for _ in range(3):
        path.append(conv_output_size(path[-1], 3, stride=2, ceil_mode=ceil_mode))
    return path


def squeezenet_224_path():
    rows = layer_table(squeezenet('1.0', num_classes=10), (1, 1, 224, 224))
    in_the_net = [rows[0].output_shape[-1]] + [r.output_shape[-1] for r in rows if 'pool' in r.name
                                               and r.output_shape[-1] > 1]
    require(in_the_net == pooling_path(224, True), f'the network pools {in_the_net}')
    return arrows(pooling_path(224, True)), arrows(pooling_path(224, False))


def path_227():
    require(pooling_path(227, True) == pooling_path(227, False), 'ceil mode matters at 227')
    return arrows(pooling_path(227, True))


# ---------------------------------------------------------------------------- fine-tuning

def finetune_estimate():
    """The photo path's cost per training image of VGG-16 at the notebook's CPU rate, and
    the minutes of an epoch of 1,000 photos."""
    per_image = TRAIN_FLOPS * macs(get_model, (1, 3, 224, 224), 'vgg16') / cpu_rate('10-finetune')
    return round(cpu_rate('10-finetune') / 1e9), f'{per_image:.2f}', round(1000 * per_image / 60)


def transfer_target_net():
    """The default experiment's network for the target task."""
    s = TransferSettings()
    return vgg11_fashion(num_classes=len(s.target_classes), **s.model_options)


def transfer_rows():
    return table(transfer_target_net, (1,) + TransferSettings().input_shape)


def transfer_network():
    """The default experiment's network and pretraining are the VGG chapter's quick run's."""
    s, quick = TransferSettings(), get_recipe('vgg').settings('quick')
    require(s.model == 'vgg11_fashion' and s.pretrain_batch_size == quick['batch_size'],
            'the experiment does not pretrain the VGG chapter\'s quick network')
    require(s.resize == quick['resize'] and s.pretrain_lr == quick['lr'], 'other input or lr')
    return (quick['ratio'], quick['fc_units'], quick['resize'], quick['resize'], quick['lr'])


def transfer_output_layer():
    rows, s = transfer_rows(), TransferSettings()
    features, classes = rows[-2].output_shape[1], rows[-1].output_shape[1]
    require(rows[-1].params == features * classes + classes, 'the last layer is not dense')
    return (features, classes, features, classes, classes, tex(rows[-1].params),
            sum(r.params for r in rows) / 1e6)


def transfer_input_side():
    rows = transfer_rows()
    last_block = [r for r in rows if len(r.output_shape) == 4][-1]
    side = TransferSettings().resize
    require(last_block.output_shape[-1] == side // 2 ** 5, 'five poolings do not give that side')
    return (side, side, side // 2 ** 5, last_block.output_shape[1],
            last_block.output_shape[-1], last_block.output_shape[-1])


def transfer_smoke():
    s = SMOKE_SETTINGS
    return s.pretrain_epochs, s.num_source_train, s.shots, s.num_target_test


def same_rate_as_vgg():
    require(cpu_rate('10-finetune') == cpu_rate('3-vgg'), 'the two notebooks quote different rates')
    return round(cpu_rate('3-vgg') / 1e9)


@dataclass(frozen=True)
class Claim:
    notebook: str
    phrase: str
    compute: Callable

    def values(self):
        values = self.compute()
        return () if values is None else values if isinstance(values, tuple) else (values,)

    def __str__(self):
        return f'{self.notebook}: {self.phrase[:60]}'


CLAIMS = [
    # LeNet
    Claim('1-lenet', r'sees a ${0} \times {0}$ patch', lambda: receptive_field(lenet('first'))),
    Claim('1-lenet', r'$r = 1 + {} = {}$', lenet_receptive_field_terms),
    Claim('1-lenet', r'halve it: ${}$',
          lambda: arrows([28] + sides(table(lenet, (1, 1, 28, 28), 'first')))),
    Claim('1-lenet', r'$6 \cdot (1 \cdot 25 + 1) = {}$ for the first layer',
          lambda: table(lenet, (1, 1, 28, 28), 'first')[0].params),
    Claim('1-lenet', r'flattens $16 \cdot 4 \cdot 4 = {}$ values',
          lambda: int(np.prod(table(lenet, (1, 1, 28, 28), 'first')[3].output_shape[1:]))),
    Claim('1-lenet', r'($256 \cdot 120 + 120 = {}$)',
          lambda: tex(table(lenet, (1, 1, 28, 28), 'first')[4].params)),
    Claim('1-lenet', 'both convolutions together have under {}', lenet_conv_params),
    Claim('1-lenet', r'leaves $16 \times 5 \times 5 = {}$ features',
          lambda: int(np.prod(table(lenet, (1, 1, 28, 28), 'later')[3].output_shape[1:]))),
    Claim('1-lenet', 'about {:.1f} million multiply-adds per image',
          lambda: macs(lenet, (1, 1, 28, 28), 'first') / 1e6),
    Claim('1-lenet', r'each sigmoid multiplies the gradient by at most $\tfrac1{}$', sigmoid_bound),
    Claim('1-lenet', "six channels ({0}x{0}), their pooled {1}x{1} copies, and six of the second "
          "convolution's 16 channels ({2}x{2}) and their {3}x{3} pooling",
          lambda: tuple(sides(table(lenet, (1, 1, 28, 28), 'first')))),
    Claim('1-lenet', 'The CPU rate, {} GFLOP/s', lambda: round(cpu_rate('1-lenet') / 1e9)),
    Claim('1-lenet', 'learning rate {}, batch {}, {} epochs', lambda: book_setting('lenet')),
    # AlexNet
    Claim('2-alexnet', r'$224 \to \lfloor (224 - 11 + 0 + 4) / 4 \rfloor = {}$',
          lambda: conv_output_size(224, 11, stride=4)),
    Claim('2-alexnet', r'${} \to {}$, ${} \to {}$, ${} \to {}$. The dense head therefore sees '
          r'$256 \cdot 5 \cdot 5 = {}$ features',
          lambda: (*[s for pair in zip(alexnet_pool_sides(), alexnet_pool_sides()[1:])
                     for s in pair],
                   tex(int(np.prod(alexnet_rows()[7].output_shape[1:]))))),
    Claim('2-alexnet', r'$6{{,}}400 \cdot 4096 + 4096 \approx {:.1f}$ million, more than all five '
          'convolutions together', alexnet_first_dense_millions),
    Claim('2-alexnet', r'(${}$) while the channels grow to {}',
          lambda: (arrows([224] + alexnet_pool_sides()),
                   max(r.output_shape[1] for r in alexnet_rows() if len(r.output_shape) == 4))),
    Claim('2-alexnet', 'hold about {} of the {} million parameters',
          lambda: (round((alexnet_dense(0) + alexnet_dense(1)) / 1e6),
                   round(params(alexnet_book, (1, 1, 224, 224)) / 1e6))),
    Claim('2-alexnet', 'AlexNet needs about {:.1f} billion multiply-adds',
          lambda: macs(alexnet_book, (1, 1, 224, 224)) / 1e9),
    Claim('2-alexnet', 'cuts a 224x224 image to {0}x{0} right away',
          lambda: alexnet_rows()[0].output_shape[-1]),
    Claim('2-alexnet', 'learning rate {}, batch {}, images resized to {}x{}, {} epochs',
          lambda: book_setting('alexnet', resize=True)),
    Claim('2-alexnet', "(at the book's 224x224, {0}x{0} after the first convolution, down to "
          '{1}x{1} after the last pooling; smaller at a smaller input)',
          lambda: (alexnet_rows()[0].output_shape[-1], alexnet_pool_sides()[-1])),
    Claim('2-alexnet', 'trains on 500 images at {0}x{0} for one epoch',
          lambda: get_recipe('alexnet').settings('smoke')['resize']),
    # VGG
    Claim('3-vgg', r'224 to $224 / 2^5 = {}$', lambda: sides(vgg11_rows())[-1]),
    Claim('3-vgg', r'see $1 + 2 + 2 = {}$ pixels, like one 5x5; three see {}, like one 7x7',
          lambda: (receptive_field([(3, 1)] * 2), receptive_field([(3, 1)] * 3))),
    Claim('3-vgg', r'\frac{{27 C^2}}{{49 C^2}} \approx {:.2f}, '
          r'\qquad \frac{{18 C^2}}{{25 C^2}} = {:.2f}',
          lambda: (stacked_params_ratio(3), stacked_params_ratio(2))),
    Claim('3-vgg', r'$7 \cdot 7 \cdot 512 = {}$ inputs',
          lambda: tex(int(np.prod(vgg11_rows()[4].output_shape[1:])))),
    Claim('3-vgg', r'\approx {}$ million weights, ' "most of the network's {} million, while all "
          'eight convolutions together have about {} million',
          lambda: (round((vgg11_first_dense() - 4096) / 1e6),
                   round(params(vgg, (1, 1, 224, 224), CONV_ARCHS['A']) / 1e6),
                   round(vgg11_blocks_params(CONV_ARCHS['A']) / 1e6))),
    Claim('3-vgg', 'convolutions have about a {} of the weights and multiply-adds', vgg_narrowing),
    Claim('3-vgg', 'about {} billion multiply-adds per 224x224 image, {} times the {} billion',
          vgg16_vs_alexnet),
    Claim('3-vgg', "last rows ({}x{} at the book's 224x224, {}x{} at {}x{})", vgg_last_sides),
    Claim('3-vgg', r'parameter column: $9 \cdot 64 \cdot 128 + 128$', vgg_block_conv_params),
    Claim('3-vgg', "Does any block's output pixel see the whole 224x224 image?",
          no_vgg_block_sees_the_image),
    Claim('3-vgg', 'Its CPU rate, {} GFLOP/s', lambda: round(cpu_rate('3-vgg') / 1e9)),
    Claim('3-vgg', 'so its CPU line, about {} minutes, is an epoch', vgg_epoch_minutes),
    Claim('3-vgg', '`python -m bench.speed`, {} images/s',
          lambda: measured_rate('3-vgg', 47.7, vgg, (1, 1, 224, 224), narrow(CONV_ARCHS['A'], 4))),
    Claim('3-vgg', "learning rate {}, batch {}, images resized to {}x{}, {} epochs, every block's "
          'channels divided by {}', lambda: book_setting('vgg', resize=True) + (
              get_recipe('vgg').book['ratio'],)),
    Claim('3-vgg', 'trains channels/{} on 500 images',
          lambda: get_recipe('vgg').settings('smoke')['ratio']),
    # NiN
    Claim('4-nin', 'learning rate {}, batch {}, images resized to {}x{}, {} epochs',
          lambda: book_setting('nin', resize=True)),
    Claim('4-nin', "VGG-11's first dense layer alone has about {} million weights",
          lambda: round(vgg11_first_dense() / 1e6)),
    Claim('4-nin', r'the first block maps $224 \to {}$, the poolings ${}$',
          lambda: (nin_rows()[0].output_shape[-1], arrows(
              [nin_rows()[0].output_shape[-1]] +
              [r.output_shape[-1] for r in nin_rows() if r.name.startswith('pool')][:3]))),
    Claim('4-nin', r'\cdot 10$ weights, about {} million', alexnet_head_weights),
    Claim('4-nin', r'$10 \cdot 384 \cdot 9 + 2 \cdot 10 \cdot 10$ weights, about {} thousand',
          nin_head),
    Claim('4-nin', "about {} million parameters against the book's AlexNet's {} million",
          lambda: (round(params(nin, (1, 1, 224, 224)) / 1e6),
                   round(params(alexnet_book, (1, 1, 224, 224)) / 1e6))),
    Claim('4-nin', "NiN needs about {} billion multiply-adds per image, four {} of AlexNet's {} "
          'billion',
          nin_vs_alexnet_macs),
    Claim('4-nin', "({}x{} at the book's 224x224, only {}x{} at the smoke run's",
          lambda: (nin_last_block_side(),) * 2 + (
              nin_last_block_side(get_recipe('nin').settings('smoke')['resize']),) * 2),
    Claim('4-nin', "smoke run's {0}x{0}",
          lambda: get_recipe('nin').settings('smoke')['resize']),
    Claim('4-nin', "pooled output of the third block (384 channels of {0}x{0} at 224x224)",
          lambda: nin_rows()[5].output_shape[-1]),
    # GoogLeNet
    Claim('5-googlenet', 'learning rate {}, batch {}, images resized to {}x{}, {} epochs',
          lambda: book_setting('googlenet', resize=True)),
    Claim('5-googlenet', 'for block 3a ${} + {} + {} + {} = {}$', inception_3a_channels),
    Claim('5-googlenet', r'\approx {}\text{{M}} \qquad\text{{vs.}}',
          lambda: round(path_5x5(False) / 1e6)),
    Claim('5-googlenet', r'\approx {:.1f}\text{{M}},$$ nearly ten times less',
          lambda: path_5x5(True) / 1e6),
    Claim('5-googlenet', r'\approx \frac{{{}\text{{M}}}}{{{}\text{{M}}}} \approx {:.1f}',
          lambda: (round(macs(unreduced_3a, (1, 192, 28, 28)) / 1e6),
                   round(macs(block_3a, (1, 192, 28, 28)) / 1e6), inception_3a_ratio())),
    Claim('5-googlenet', 'block 3a as a whole, whose 3x3 path is reduced too, about {:.1f} times',
          inception_3a_ratio),
    Claim('5-googlenet', '(${}$), the channels grow to {}', googlenet_stage_sides_and_channels),
    Claim('5-googlenet', "About {} million parameters in all: an {} of the book's AlexNet's",
          lambda: (round(params(googlenet, (1, 1, 96, 96)) / 1e6),
                   fraction(params(alexnet_book, (1, 1, 224, 224))
                            / params(googlenet, (1, 1, 96, 96))))),
    Claim('5-googlenet', 'GoogLeNet needs about {:.2f} billion multiply-adds',
          lambda: macs(googlenet, (1, 1, 96, 96)) / 1e9),
    Claim('5-googlenet', 'Its CPU rate, {} GFLOP/s', lambda: round(cpu_rate('5-googlenet') / 1e9)),
    Claim('5-googlenet', '`python -m bench.speed`, {} images/s',
          lambda: measured_rate('5-googlenet', 84, googlenet, (1, 1, 96, 96))),
    Claim('5-googlenet', 'CPU line, about {} minutes',
          lambda: epoch_minutes('5-googlenet', googlenet, (1, 1, 96, 96))),
    # the inputs of stages 3 and 5
    Claim('5-googlenet', 'maps are small ({0}x{0} down to {1}x{1} at 96x96)',
          lambda: (googlenet_rows()[1].output_shape[-1], googlenet_rows()[3].output_shape[-1])),
    Claim('5-googlenet', 'whose input is {} channels of {}x{} at 96x96',
          lambda: (googlenet_rows()[1].output_shape[1],) + googlenet_rows()[1].output_shape[2:]),
    # Batch normalization
    Claim('6-batch-norm', r'$\epsilon > 0$ ($10^{{{}}}$ here)',
          lambda: round(math.log10(bn_default('eps')))),
    Claim('6-batch-norm', r'with momentum ${}$ in this code', lambda: bn_default('momentum')),
    Claim('6-batch-norm', r'\leftarrow {}\,\boldsymbol{{\mu}}_{{\text{{moving}}}} + {:.1f}\,',
          lambda: (bn_default('momentum'), 1 - bn_default('momentum'))),
    Claim('6-batch-norm', 'each normalisation layer has {} numbers per feature',
          bn_numbers_per_feature),
    Claim('6-batch-norm', 'uses: learning rate {}, batch {}, {} epochs',
          lambda: book_setting('batchnorm')),
    Claim('6-batch-norm', 'The book\'s numbers to compare with are {:.3f} (from scratch)',
          lambda: get_recipe('batchnorm').book_test_acc),
    # ResNet
    Claim('7-resnet', 'Watch the side halve from 96 to {}', resnet_sides),
    Claim('7-resnet', 'three quarters of them ({}) in the last stage', resnet_last_stage_share),
    Claim('7-resnet', 'where the {} million parameters sit',
          lambda: round(params(resnet18_book, (1, 1, 96, 96)) / 1e6)),
    Claim('7-resnet', '+ 1 dense layer = {}', resnet_layers_with_weights),
    Claim('7-resnet', 'The {} GFLOP/s below is about what ResNet-18 sustained',
          resnet_rate_matches_images_per_second),
    Claim('7-resnet', 'the output is {} channels of {}x{}',
          lambda: table(Residual, (4, 3, 6, 6), 6, True, 2)[0].output_shape[1:]),
    Claim('7-resnet', 'learning rate {}, batch {}, {} epochs', lambda: book_setting('resnet')),
    # DenseNet
    Claim('8-densenet', 'resized to {0}x{0}, learning rate {1}, batch {2}, {3} epochs',
          lambda: (get_recipe('densenet').book['resize'],) + book_setting('densenet')),
    Claim('8-densenet', r'$64 \to 64 + 4 \cdot 32 = {}.$', densenet_channels),
    Claim('8-densenet', r'$3 + 2 \cdot 10 = {}$ output channels',
          lambda: table(DenseBlock, (4, 3, 8, 8), 2, 10)[-1].output_shape[1]),
    Claim('8-densenet', "ResNet-18's {:.1f} million: DenseNet has about {:.2f} million "
          'parameters, {} times fewer', resnet_vs_densenet_params),
    Claim('8-densenet', "the book reports {} for it against ResNet-18's {}",
          lambda: (get_recipe('densenet').book_test_acc, get_recipe('resnet').book_test_acc)),
    Claim('8-densenet', '({} against {} million at 96x96)',
          lambda: (round(macs(densenet_book, (1, 1, 96, 96)) / 1e6),
                   round(macs(resnet18_book, (1, 1, 96, 96)) / 1e6))),
    Claim('8-densenet', 'ResNet notebook ({} million per image here)',
          lambda: round(macs(densenet_book, (1, 1, 96, 96)) / 1e6)),
    # SqueezeNet
    Claim('9-squeezenet', 'needs about {} billion multiply-adds per 224x224 image, a {} of '
          "VGG-11's {} billion",
          lambda: squeezenet_vs_vgg11(False)),
    Claim('9-squeezenet', "1,000 classes, {} billion, a {} of VGG-11's",
          lambda: squeezenet_vs_vgg11(True)[:2]),
    Claim('9-squeezenet', 'training step sustained about {} GFLOP/s',
          lambda: squeezenet_epoch()[0]),
    Claim('9-squeezenet', 'takes about {} minutes and the 5 epochs about {} hours',
          lambda: squeezenet_epoch()[1:]),
    Claim('9-squeezenet', r'${} + {} + {} = {}$ parameters against ${}$ for the plain 3x3 layer, '
          '{} times fewer',
          fire2),
    Claim('9-squeezenet', "On Table 1's path it never is: ${}$ either way", path_227),
    Claim('9-squeezenet', r'the stem gives {} and the poolings ${}$, where rounding down would '
          r'give ${}$',
          lambda: (pooling_path(224, True)[0],) + squeezenet_224_path()),
    Claim('9-squeezenet', 'The answer was SqueezeNet, {:.2f} million parameters',
          lambda: params(squeezenet, (1, 3, 224, 224), '1.0') / 1e6),
    Claim('9-squeezenet', 'resized to {0}x{0}, batch {1}, {2} epochs',
          lambda: tuple(get_recipe('squeezenet').book[k]
                        for k in ('resize', 'batch_size', 'epochs'))),
    Claim('9-squeezenet', r'the output has ${} + {} = {}$ channels at the same size',
          lambda: (64, 64, table(Fire, (4, 96, 55, 55), 16, 64)[0].output_shape[1])),
    Claim('9-squeezenet', r'($n_{{\text{{in}}}}$ = {} to {} channels)', squeeze_widths),
    Claim('9-squeezenet', 'learning rate {} instead of {}',
          lambda: (get_recipe('squeezenet').book['lr'], get_recipe('nin').book['lr'])),
    # Fine-tuning
    Claim('10-finetune', "VGG-11 with every block's channels divided by {}, {}-unit dense layers, "
          "on {}x{} images, pretrained with that chapter's SGD at learning rate {}",
          transfer_network),
    Claim('10-finetune', 'a narrower VGG is pretrained for {} epoch on {} source images and '
          'trained on {} images per class, tested on {}', transfer_smoke),
    Claim('10-finetune', 'trained from scratch on the {} labelled images of the target task',
          lambda: TransferSettings().shots * len(TransferSettings().target_classes)),
    Claim('10-finetune', 'is above chance (one in {}) from its first epoch',
          lambda: len(TransferSettings().target_classes)),
    Claim('10-finetune', r'its new output layer maps {} features to {} classes: ${} \cdot {} + {} '
          r'= {}$ parameters, of about {:.2f} million', transfer_output_layer),
    Claim('10-finetune', r'five 2x2 max poolings take {} pixels to ${} / 2^5 = {}$, and the first '
          'dense layer expects exactly the {} channels of that {}x{} map', transfer_input_side),
    Claim('10-finetune', r'Adam at $2 \times 10^{{-4}}$, batch {}, {} epochs',
          lambda: (PHOTO_DEFAULTS['batch_size'], PHOTO_DEFAULTS['epochs'])),
    Claim('10-finetune', 'VGG-16 needs {:.1f} billion multiply-adds',
          lambda: macs(get_model, (1, 3, 224, 224), 'vgg16') / 1e9),
    Claim('10-finetune', 'At the {} GFLOP/s that VGG-11/4', same_rate_as_vgg),
    Claim('10-finetune', 'At the {} GFLOP/s that VGG-11/4\'s training step sustained on a 2-core '
          'server CPU (two cores of an Intel Xeon, `docs/results.md`), one training image costs '
          'about {} s, so every thousand training photos make an epoch of about {} minutes',
          finetune_estimate),
    Claim('10-finetune', 'instead of the {:,} of the ImageNet layer',
          lambda: table(get_model, (1, 3, 224, 224), 'vgg16')[-1].params),
    Claim('10-finetune', r'expects exactly ${} \times {} \times {}$ inputs',
          lambda: table(vgg, (1, 3, 224, 224), CONV_ARCHS['D'])[4].output_shape[1:]),
    Claim('10-finetune', r'take 224 pixels to $224 / 2^5 = {}$',
          lambda: sides(table(vgg, (1, 3, 224, 224), CONV_ARCHS['D']))[4]),
    Claim('10-finetune', "What share of VGG-16's {} million is that?",
          lambda: round(params(get_model, (1, 3, 224, 224), 'vgg16') / 1e6)),
]

# Each chapter notebook trains the recipe's `notebook` preset on a CPU, and says what it changes.
CLAIMS += [claim for name in ('1-lenet', '2-alexnet', '3-vgg', '4-nin', '5-googlenet',
                               '6-batch-norm', '7-resnet', '8-densenet', '9-squeezenet')
           for claim in default_claims(name, name.split('-', 1)[1].replace('-', ''))]


def _claim_id(claim):
    return f'{claim.notebook}:{claim.phrase[:40]}'


@pytest.mark.parametrize('claim', CLAIMS, ids=_claim_id)
def test_the_prose_states_what_the_library_computes(claim):
    expected = claim.phrase.format(*claim.values())
    assert expected in markdown(claim.notebook), \
        f'{claim.notebook} does not say {expected!r} (the library computes it)'


def test_every_chapter_notebook_has_claims():
    names = {os.path.basename(p)[:-len('.ipynb')]
             for p in glob.glob(os.path.join(NOTEBOOKS, '[0-9]*.ipynb'))}
    assert names == {c.notebook for c in CLAIMS}
    assert sum(len(c.values()) or 1 for c in CLAIMS) >= 100


@pytest.mark.parametrize('claim', [c for c in CLAIMS if '{' in c.phrase.replace('{{', '')],
                         ids=_claim_id)
def test_a_claim_fails_when_its_number_changes(claim):
    """Each claim's number is filled in, not typed: another value is not in the text."""
    other = ''.join(text + ('§' if field is not None else '')
                    for text, field, _, _ in string.Formatter().parse(claim.phrase))
    assert other not in markdown(claim.notebook)


# The book's sections: the current edition's, then the first MXNet edition's (d2lzh, whose
# chapter 5 is the convolutional networks and chapter 9 computer vision: 9.1 image
# augmentation, 9.2 fine-tuning).
CHAPTER_OF = {'1-lenet': 'lenet', '2-alexnet': 'alexnet', '3-vgg': 'vgg', '4-nin': 'nin',
              '5-googlenet': 'googlenet', '6-batch-norm': 'batchnorm', '7-resnet': 'resnet',
              '8-densenet': 'densenet', '9-squeezenet': 'squeezenet'}
RECIPE_SECTIONS = re.compile(r'D2L (\d+\.\d+) \((\d+\.\d+)')
FINE_TUNING_SECTIONS = ('14.2', '9.2')


def header_sections(name):
    """The first two section numbers the notebook's first cell cites."""
    return tuple(re.findall(r'section (\d+\.\d+)', _notebook(name).cells[0].source)[:2])


@pytest.mark.parametrize('name', sorted(CHAPTER_OF))
def test_a_notebook_cites_the_sections_its_recipe_gives(name):
    recipe = get_recipe(CHAPTER_OF[name])
    assert header_sections(name) == RECIPE_SECTIONS.search(recipe.section).groups()


def test_fine_tuning_has_the_same_sections_everywhere():
    from chapters import finetune
    current, first = FINE_TUNING_SECTIONS
    assert finetune.__doc__.startswith(
        f'Fine-Tuning: D2L section {current} ({first} in the first MXNet edition)')
    assert header_sections('10-finetune') == FINE_TUNING_SECTIONS
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as readme:
        row = next(line for line in readme if line.startswith('| Fine-tuning |'))
    assert f'| {current} ({first}) |' in row


def all_text(name):
    return '\n'.join(c.source for c in _notebook(name).cells)


@pytest.mark.parametrize('name', sorted(CHAPTER_OF) + ['10-finetune'])
def test_no_notebook_calls_a_server_cpu_a_laptop_or_pads_channels(name):
    """The machines measured on are server CPUs (AMD EPYC, Intel Xeon) on 2 cores, and
    LeNet is a plain HybridSequential: no channel padding to explain."""
    text = all_text(name).lower()
    assert 'laptop' not in text
    assert 'channelpadded' not in text and 'channel_padding' not in text


def shown_sources(code):
    """Names whose source the code shows: `inspect.getsource(name)`, or
    `inspect.getsource(f) for f in (a, b, ...)`."""
    shown = set(re.findall(r'inspect\.getsource\((\w+)\)', code))
    for names in re.findall(r'inspect\.getsource\(\w+\) for \w+ in \(([\w, ]+)\)', code):
        shown.update(name.strip() for name in names.split(','))
    return shown


def test_the_vgg_notebook_shows_the_layers_and_the_head_it_runs():
    code = '\n'.join(c.source for c in _notebook('3-vgg').cells if c.cell_type == 'code')
    assert {'vgg_layers', 'vgg_block', 'vgg_head', 'vgg'} <= shown_sources(code)
