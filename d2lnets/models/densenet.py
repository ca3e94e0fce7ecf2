"""DenseNet: Huang, Liu, van der Maaten and Weinberger, "Densely Connected
Convolutional Networks", CVPR 2017 (arXiv:1608.06993); D2L section 8.7 (5.12
in the book's first MXNet edition).

A dense block concatenates each convolution block's output to its input; a
transition block halves channels and size in between. The book's
`conv_block` is BN-ReLU-3x3 conv; the ImageNet DenseNet-BC networks put a
bias-free 1x1 bottleneck of 4 x growth channels first and are laid out as
MXNet's model zoo lays out its `densenet*` (`features` with dense blocks
`stage1_` to `stage4_`, then `output`), so zoo files load by name.
"""
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent, Identity

from .classifier import Classifier
from .registry import register_model

# depth -> (initial channels, growth rate, convolutions per dense block), the paper's Table 1
SPECS = {
    121: (64, 32, (6, 12, 24, 16)),
    161: (96, 48, (6, 12, 36, 24)),
    169: (64, 32, (6, 12, 32, 32)),
    201: (64, 32, (6, 12, 48, 32)),
}
BOTTLENECK_WIDTH = 4


def conv_block(num_channels, bottleneck=False):
    """BN, ReLU, 3x3 convolution (the book's); with `bottleneck`, a bias-free
    BN-ReLU-1x1 convolution of 4 x `num_channels` comes first (DenseNet-BC)."""
    blk = nn.HybridSequential(prefix='')
    if bottleneck:
        blk.add(nn.BatchNorm(), nn.Activation('relu'),
                nn.Conv2D(BOTTLENECK_WIDTH * num_channels, kernel_size=1, use_bias=False))
    blk.add(nn.BatchNorm(), nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=3, padding=1, use_bias=not bottleneck))
    return blk


class DenseBlock(nn.HybridSequential):
    """`num_convs` conv blocks, each fed the concatenation of the block's input
    and the outputs of all conv blocks before it.

    Each step maps X to concat(X, conv_block(X)) on the channel axis: a
    `HybridConcurrent` of the identity and the conv block, as the model zoo
    writes it, so `num_channels` channels are added per step.
    """

    def __init__(self, num_convs, num_channels, bottleneck=False, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            for _ in range(num_convs):
                step = HybridConcurrent(axis=1, prefix='')
                step.add(Identity(), conv_block(num_channels, bottleneck))
                self.add(step)


def transition_block(num_channels, use_bias=True):
    """BN, ReLU, 1x1 convolution to `num_channels`, 2x2 average pooling."""
    blk = nn.HybridSequential(prefix='')
    blk.add(nn.BatchNorm(), nn.Activation('relu'),
            nn.Conv2D(num_channels, kernel_size=1, use_bias=use_bias),
            nn.AvgPool2D(pool_size=2, strides=2))
    return blk


def densenet_features(num_channels, growth_rate, num_convs_in_dense_blocks, bottleneck=False):
    """Stem, dense blocks with halving transitions, BN-ReLU, global pooling:
    every layer but the output."""
    layers = [nn.Conv2D(num_channels, kernel_size=7, strides=2, padding=3,
                        use_bias=not bottleneck),
              nn.BatchNorm(), nn.Activation('relu'),
              nn.MaxPool2D(pool_size=3, strides=2, padding=1)]
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        layers.append(DenseBlock(num_convs, growth_rate, bottleneck, prefix=f'stage{i + 1}_'))
        num_channels += num_convs * growth_rate
        if i != len(num_convs_in_dense_blocks) - 1:
            num_channels //= 2
            layers.append(transition_block(num_channels, use_bias=not bottleneck))
    return layers + [nn.BatchNorm(), nn.Activation('relu'), nn.GlobalAvgPool2D()]


def densenet(num_channels, growth_rate, num_convs_in_dense_blocks, num_classes=10,
             bottleneck=False):
    """A DenseNet as one flat HybridSequential (the book's shape table):
    `densenet_features`, then the output layer."""
    net = nn.HybridSequential()
    net.add(*densenet_features(num_channels, growth_rate, num_convs_in_dense_blocks, bottleneck),
            nn.Dense(num_classes))
    return net


@register_model(input_shape=(1, 96, 96))
def densenet_book(num_classes=10):
    """The book's DenseNet: 64 channels, growth rate 32, blocks (4, 4, 4, 4)."""
    return densenet(64, 32, (4, 4, 4, 4), num_classes)


def densenet_imagenet(depth, num_classes=1000):
    """The ImageNet DenseNet-BC of `depth` (121, 161, 169 or 201)."""
    if depth not in SPECS:
        raise ValueError(f'no DenseNet of depth {depth}; valid: {", ".join(map(str, SPECS))}')
    return Classifier(lambda: densenet_features(*SPECS[depth], bottleneck=True),
                      lambda: nn.Dense(num_classes, prefix='output_'),
                      prefix=f'densenet{depth}_')


@register_model(input_shape=(3, 224, 224))
def densenet121(num_classes=1000):
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16)."""
    return densenet_imagenet(121, num_classes)


@register_model(input_shape=(3, 224, 224))
def densenet161(num_classes=1000):
    """DenseNet-161: 96 initial channels, growth 48, blocks (6, 12, 36, 24)."""
    return densenet_imagenet(161, num_classes)


@register_model(input_shape=(3, 224, 224))
def densenet169(num_classes=1000):
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32)."""
    return densenet_imagenet(169, num_classes)


@register_model(input_shape=(3, 224, 224))
def densenet201(num_classes=1000):
    """DenseNet-201: growth 32, blocks (6, 12, 48, 32)."""
    return densenet_imagenet(201, num_classes)
