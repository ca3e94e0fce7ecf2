"""SqueezeNet: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x
fewer parameters and <0.5MB model size", 2016 (arXiv:1602.07360).

A Fire module squeezes with 1x1 convolutions and expands with 1x1 and 3x3
convolutions side by side. Version 1.0 is the paper's Table 1; version 1.1
(from the authors' repository) starts with a 3x3 convolution and pools
earlier, for 2.4x less computation at the same accuracy. The paper's
section 6 adds bypasses: "simple" around the Fire modules whose input and
output widths match (3, 5, 7, 9), "complex" also a 1x1 convolution around
the others (2, 4, 6, 8).
"""
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

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


class Fire(nn.HybridBlock):
    """Squeeze (1x1, `squeeze` channels), then expand with 1x1 and 3x3
    convolutions of `expand` channels each, concatenated; with `bypass`, the
    input (through a 1x1 convolution when `bypass_conv`) is added."""

    def __init__(self, squeeze, expand, bypass=False, bypass_conv=False, **kwargs):
        super().__init__(**kwargs)
        self.squeeze = nn.Conv2D(squeeze, kernel_size=1, activation='relu')
        self.expand = HybridConcurrent(axis=1)
        self.expand.add(nn.Conv2D(expand, kernel_size=1, activation='relu'),
                        nn.Conv2D(expand, kernel_size=3, padding=1, activation='relu'))
        self.bypass = bypass
        self.bypass_conv = nn.Conv2D(2 * expand, kernel_size=1) if bypass_conv else None

    def hybrid_forward(self, F, x):
        out = self.expand(self.squeeze(x))
        if self.bypass_conv is not None:
            return out + self.bypass_conv(x)
        if self.bypass:
            return out + x
        return out


def squeezenet(version='1.0', bypass='none', num_classes=1000, dropout=0.5):
    """SqueezeNet `version` ('1.0' or '1.1') with `bypass` 'none', 'simple' or 'complex'."""
    if version not in SPECS:
        raise ValueError(f'unknown SqueezeNet version {version!r}; valid: {", ".join(SPECS)}')
    if bypass not in BYPASSES:
        raise ValueError(f'unknown bypass {bypass!r}; valid: {", ".join(BYPASSES)}')
    (stem_channels, stem_kernel), layers = SPECS[version]
    net = nn.HybridSequential()
    net.add(nn.Conv2D(stem_channels, kernel_size=stem_kernel, strides=2, activation='relu'))
    fire_index = 1  # the paper numbers Fire modules from 2
    for layer in layers:
        if layer == 'pool':
            net.add(nn.MaxPool2D(pool_size=3, strides=2, ceil_mode=True))
            continue
        fire_index += 1
        _, squeeze, expand = layer
        matching = fire_index % 2 == 1  # fire3, 5, 7, 9 keep their input width
        net.add(Fire(squeeze, expand, bypass=bypass != 'none' and matching,
                     bypass_conv=bypass == 'complex' and not matching))
    net.add(nn.Dropout(dropout), nn.Conv2D(num_classes, kernel_size=1, activation='relu'),
            nn.GlobalAvgPool2D(), nn.Flatten())
    return net


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
