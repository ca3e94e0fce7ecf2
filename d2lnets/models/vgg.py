"""VGG: networks using blocks.

Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv:1409.1556); D2L section 8.2, "Networks Using
Blocks (VGG)" (5.7 in the book's first MXNet edition).

A network is a `conv_arch`: one `(num_convs, num_channels)` pair per block, as
the book writes it, optionally with a third item giving each convolution's
kernel size (the paper's configuration C ends three blocks with a 1x1
convolution). Five blocks halve 224x224 input to 7x7 before three
fully-connected layers.
"""
from mxnet.gluon import nn

from .classifier import Classifier
from .registry import register_model

# The paper's Table 1, by column. A is also the book's VGG-11.
CONV_ARCHS = {
    'A': ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)),
    'B': ((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)),
    'C': ((2, 64), (2, 128), (3, 256, (3, 3, 1)), (3, 512, (3, 3, 1)), (3, 512, (3, 3, 1))),
    'D': ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    'E': ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}
# Each configuration of the paper as the arguments of `vgg`.
CONFIGS = {
    'A': dict(conv_arch=CONV_ARCHS['A']),
    'A-LRN': dict(conv_arch=CONV_ARCHS['A'], lrn=True),
    'B': dict(conv_arch=CONV_ARCHS['B']),
    'C': dict(conv_arch=CONV_ARCHS['C']),
    'D': dict(conv_arch=CONV_ARCHS['D']),
    'E': dict(conv_arch=CONV_ARCHS['E']),
}


class LocalResponseNorm(nn.HybridBlock):
    """Local response normalisation across channels, with the constants of
    Krizhevsky et al. (2012) that VGG's configuration A-LRN uses."""

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, **kwargs):
        super().__init__(**kwargs)
        self._args = dict(nsize=size, alpha=alpha, beta=beta, knorm=k)

    def hybrid_forward(self, F, x):
        return F.LRN(x, **self._args)


def vgg_layers(num_convs, num_channels, kernel_sizes=None, batch_norm=False, lrn=False,
               relu_layer=False):
    """The layers of one VGG block: `num_convs` size-preserving convolutions
    with ReLU, then 2x2 max pooling.

    `kernel_sizes` gives each convolution's kernel (default all 3); `batch_norm`
    puts batch normalisation before each ReLU (then a layer of its own); `lrn`
    puts local response normalisation before the pooling. Without batch norm
    the ReLU is the convolution's activation, as the book writes it, or with
    `relu_layer` a layer of its own, as MXNet's model zoo lays it out.
    """
    kernel_sizes = tuple(kernel_sizes or (3,) * num_convs)
    if len(kernel_sizes) != num_convs:
        raise ValueError(f'{num_convs} convolutions but {len(kernel_sizes)} kernel sizes')
    separate = batch_norm or relu_layer
    layers = []
    for k in kernel_sizes:
        layers.append(nn.Conv2D(num_channels, kernel_size=k, padding=k // 2,
                                activation=None if separate else 'relu'))
        if batch_norm:
            layers.append(nn.BatchNorm())
        if separate:
            layers.append(nn.Activation('relu'))
    if lrn:
        layers.append(LocalResponseNorm())
    layers.append(nn.MaxPool2D(pool_size=2, strides=2))
    return layers


def vgg_block(num_convs, num_channels, kernel_sizes=None, batch_norm=False, lrn=False):
    """One VGG block (the book's `vgg_block`): `vgg_layers` in a HybridSequential."""
    blk = nn.HybridSequential()
    blk.add(*vgg_layers(num_convs, num_channels, kernel_sizes, batch_norm, lrn))
    return blk


def vgg_head(fc_units=4096, dropout=0.5):
    """The two dropout-regularised fully-connected layers before the output."""
    return [nn.Dense(fc_units, activation='relu'), nn.Dropout(dropout),
            nn.Dense(fc_units, activation='relu'), nn.Dropout(dropout)]


def vgg(conv_arch, num_classes=10, fc_units=4096, dropout=0.5, batch_norm=False, lrn=False):
    """The book's VGG network of `conv_arch`: one HybridSequential of blocks,
    then two dropout-regularised fully-connected layers of `fc_units` and the
    output layer.

    `lrn` adds local response normalisation to the first block only, as the
    paper's configuration A-LRN does.
    """
    net = nn.HybridSequential()
    for i, block in enumerate(conv_arch):
        net.add(vgg_block(*block, batch_norm=batch_norm, lrn=lrn and i == 0))
    net.add(*vgg_head(fc_units, dropout), nn.Dense(num_classes))
    return net


def narrow(conv_arch, ratio):
    """The book's narrowed VGG: every block's channels divided by `ratio`."""
    if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio <= 0:
        raise ValueError(f'ratio must be a positive integer, got {ratio!r}')
    widths = sorted({block[1] for block in conv_arch})
    if any(width % ratio for width in widths):
        raise ValueError(f'ratio {ratio} must divide every block\'s channel count {widths}; '
                         f'try 1, 2, 4, 8, 16, 32 or 64')
    return tuple((block[0], block[1] // ratio) + tuple(block[2:]) for block in conv_arch)


def vgg_paper(config, batch_norm=False, num_classes=1000, fc_units=4096, dropout=0.5):
    """The paper's configuration `config` ('A', 'A-LRN', 'B', 'C', 'D' or 'E'),
    laid out as MXNet's model zoo lays out its VGGs, so zoo files load by
    name: `features` (every block's layers in one flat sequence, then the two
    hidden fully-connected layers), then `output`."""
    if config not in CONFIGS:
        raise ValueError(f'unknown VGG configuration {config!r}; valid: {", ".join(CONFIGS)}')
    conv_arch, lrn = CONFIGS[config]['conv_arch'], CONFIGS[config].get('lrn', False)

    def features():
        layers = []
        for i, block in enumerate(conv_arch):
            layers += vgg_layers(*block, batch_norm=batch_norm, lrn=lrn and i == 0,
                                 relu_layer=True)
        return layers + vgg_head(fc_units, dropout)

    prefix = f'vgg_{config.lower().replace("-", "_")}{"_bn" if batch_norm else ""}_'
    return Classifier(features, lambda: nn.Dense(num_classes, prefix='output_'), prefix=prefix)


@register_model(input_shape=(1, 224, 224))
def vgg11_fashion(ratio=1, **kwargs):
    """The book's VGG-11 for 1-channel 224x224 Fashion-MNIST, narrowed by `ratio`."""
    return vgg(narrow(CONV_ARCHS['A'], ratio), **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg11(**kwargs):
    """Configuration A: 11 weight layers."""
    return vgg_paper('A', **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg11_lrn(**kwargs):
    """Configuration A-LRN: A with local response normalisation."""
    return vgg_paper('A-LRN', **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg13(**kwargs):
    """Configuration B: 13 weight layers."""
    return vgg_paper('B', **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg16_1x1(**kwargs):
    """Configuration C: 16 weight layers, three of them 1x1 convolutions."""
    return vgg_paper('C', **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg16(**kwargs):
    """Configuration D: 16 weight layers."""
    return vgg_paper('D', **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg19(**kwargs):
    """Configuration E: 19 weight layers."""
    return vgg_paper('E', **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg11_bn(**kwargs):
    """Configuration A with batch normalisation."""
    return vgg_paper('A', batch_norm=True, **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg13_bn(**kwargs):
    """Configuration B with batch normalisation."""
    return vgg_paper('B', batch_norm=True, **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg16_bn(**kwargs):
    """Configuration D with batch normalisation."""
    return vgg_paper('D', batch_norm=True, **kwargs)


@register_model(input_shape=(3, 224, 224))
def vgg19_bn(**kwargs):
    """Configuration E with batch normalisation."""
    return vgg_paper('E', batch_norm=True, **kwargs)
