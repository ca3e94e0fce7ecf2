"""SqueezeNet: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x
fewer parameters and <0.5MB model size", 2016 (arXiv:1602.07360).

A Fire module squeezes with 1x1 convolutions and expands with 1x1 and 3x3
convolutions side by side. Version 1.0 is the paper's Table 1; version 1.1
(from the authors' repository) starts with a 3x3 convolution and pools
earlier, for 2.4x less computation at the same accuracy. The paper's
section 6 adds bypasses: "simple" around the Fire modules whose input and
output widths match (3, 5, 7, 9), "complex" also a 1x1 convolution around
the others (2, 4, 6, 8). The networks are laid out as MXNet's model zoo lays
out its `squeezenet1_0` and `squeezenet1_1` (`features`, then `output`), so
zoo files load by name.

Each network carries its own initialisation, which `net.initialize()` keeps
whatever default it is given: He et al.'s (2015, as torchvision's SqueezeNet)
for every convolution but the last, and the paper's Gaussian with standard
deviation 0.01 for the output convolution (conv10 in its Caffe model).
Xavier's scale (MXNet's `init.Xavier()`, the book's default) halves the
signal at each Fire module, so that the output is about 1e-4 of the input
and the loss stays at ln 10 for epochs (measured on Fashion-MNIST, 64x64).
"""
from mxnet import init
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

from .classifier import Classifier
from .registry import register_model

# version -> stem (channels, kernel) and layers: ('fire', squeeze, expand) or 'pool'
SPECS = {
    '1.0': ((96, 7), ('pool', ('fire', 16, 64), ('fire', 16, 64), ('fire', 32, 128), 'pool',
                      ('fire', 32, 128), ('fire', 48, 192), ('fire', 48, 192),
                      ('fire', 64, 256), 'pool', ('fire', 64, 256))),
    '1.1': ((64, 3), ('pool', ('fire', 16, 64), ('fire', 16, 64), 'pool', ('fire', 32, 128),
                      ('fire', 32, 128), 'pool', ('fire', 48, 192), ('fire', 48, 192),
                      ('fire', 64, 256), ('fire', 64, 256))),
}
BYPASSES = ('none', 'simple', 'complex')
HE_INIT = init.MSRAPrelu(factor_type='in', slope=0.0)
OUTPUT_INIT = init.Normal(0.01)


def _conv(channels, kernel_size, **kwargs):
    return nn.Conv2D(channels, kernel_size, weight_initializer=HE_INIT, **kwargs)


def _conv_relu(channels, kernel_size, padding=0):
    blk = nn.HybridSequential(prefix='')
    blk.add(_conv(channels, kernel_size, padding=padding), nn.Activation('relu'))
    return blk


class Fire(nn.HybridSequential):
    """Squeeze (1x1 convolution of `squeeze` channels, ReLU), then expand with
    1x1 and 3x3 convolutions of `expand` channels each (with ReLU), side by
    side and concatenated; with `bypass`, the input (through a 1x1 convolution
    when `bypass_conv`) is added.

    Children 0 (squeeze) and 1 (expand) are laid out as the model zoo's Fire
    module, so zoo files load by name.
    """

    def __init__(self, squeeze, expand, bypass=False, bypass_conv=False, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            paths = HybridConcurrent(axis=1, prefix='')
            paths.add(_conv_relu(expand, 1), _conv_relu(expand, 3, padding=1))
            self.add(_conv_relu(squeeze, 1), paths)
            self.bypass = bypass
            self.bypass_conv = _conv(2 * expand, 1) if bypass_conv else None

    def hybrid_forward(self, F, x):
        squeeze, expand = self[0], self[1]
        out = expand(squeeze(x))
        if self.bypass_conv is not None:
            return out + self.bypass_conv(x)
        if self.bypass:
            return out + x
        return out


def squeezenet_features(version='1.0', bypass='none', dropout=0.5):
    """Stem, poolings and Fire modules of `version`, then dropout: every layer
    but the output."""
    if version not in SPECS:
        raise ValueError(f'unknown SqueezeNet version {version!r}; valid: {", ".join(SPECS)}')
    if bypass not in BYPASSES:
        raise ValueError(f'unknown bypass {bypass!r}; valid: {", ".join(BYPASSES)}')
    (stem_channels, stem_kernel), specs = SPECS[version]
    layers = [_conv(stem_channels, stem_kernel, strides=2),
              nn.Activation('relu')]
    fire_index = 1  # the paper numbers Fire modules from 2
    for spec in specs:
        if spec == 'pool':
            layers.append(nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True))
            continue
        fire_index += 1
        _, squeeze, expand = spec
        matching = fire_index % 2 == 1  # fire3, 5, 7, 9 keep their input width
        layers.append(Fire(squeeze, expand, bypass=bypass != 'none' and matching,
                           bypass_conv=bypass == 'complex' and not matching))
    return layers + [nn.Dropout(dropout)]


def squeezenet_output(num_classes):
    """A 1x1 convolution to one channel per class (initialised from N(0, 0.01),
    as the paper's conv10) with ReLU, global average pooling."""
    blk = nn.HybridSequential(prefix='output_')
    with blk.name_scope():
        blk.add(nn.Conv2D(num_classes, kernel_size=1, weight_initializer=OUTPUT_INIT),
                nn.Activation('relu'),
                nn.GlobalAvgPool2D(), nn.Flatten())
    return blk


def squeezenet(version='1.0', bypass='none', num_classes=1000, dropout=0.5):
    """SqueezeNet `version` ('1.0' or '1.1') with `bypass` 'none', 'simple' or
    'complex', laid out as the model zoo's (`features`, then `output`)."""
    name = f'squeezenet{version.replace(".", "_")}_' + ('' if bypass == 'none' else bypass + '_')
    return Classifier(lambda: squeezenet_features(version, bypass, dropout),
                      lambda: squeezenet_output(num_classes), prefix=name)


@register_model(input_shape=(3, 224, 224))
def squeezenet1_0(num_classes=1000):
    """SqueezeNet 1.0, the paper's Table 1."""
    return squeezenet('1.0', num_classes=num_classes)


@register_model(input_shape=(3, 224, 224))
def squeezenet1_1(num_classes=1000):
    """SqueezeNet 1.1: 3x3 stem, earlier pooling."""
    return squeezenet('1.1', num_classes=num_classes)


@register_model(input_shape=(3, 224, 224))
def squeezenet1_0_simple_bypass(num_classes=1000):
    """SqueezeNet 1.0 with simple bypass around Fire modules 3, 5, 7 and 9."""
    return squeezenet('1.0', 'simple', num_classes)


@register_model(input_shape=(3, 224, 224))
def squeezenet1_0_complex_bypass(num_classes=1000):
    """SqueezeNet 1.0 with simple bypass and 1x1-convolution bypass around 2, 4, 6 and 8."""
    return squeezenet('1.0', 'complex', num_classes)
