"""ResNet: He, Zhang, Ren and Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (arXiv:1512.03385); D2L section 8.6 (5.11 in the
book's first MXNet edition).

The book's `Residual` block has biased convolutions and a plain 1x1
convolution on the shortcut; the ImageNet networks of the paper's Table 1 (as
MXNet's model zoo builds them, v1) drop the biases, normalise the shortcut and
use bottleneck blocks from 50 layers on.
"""
from mxnet.gluon import nn

from .registry import register_model

# depth -> (block, residuals per stage), the paper's Table 1
SPECS = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
}
STAGE_CHANNELS = (64, 128, 256, 512)


class Residual(nn.HybridBlock):
    """Two 3x3 convolutions with batch norm and a shortcut (the book's block).

    `use_1x1conv` puts a 1x1 convolution (stride `strides`) on the shortcut;
    `imagenet=True` removes the convolutions' biases and normalises the
    shortcut, as the ImageNet ResNets do.
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, imagenet=False, **kwargs):
        super().__init__(**kwargs)
        bias = not imagenet
        self.conv1 = nn.Conv2D(num_channels, 3, padding=1, strides=strides, use_bias=bias)
        self.bn1 = nn.BatchNorm()
        self.conv2 = nn.Conv2D(num_channels, 3, padding=1, use_bias=bias)
        self.bn2 = nn.BatchNorm()
        self.shortcut = None
        if use_1x1conv:
            self.shortcut = nn.HybridSequential()
            self.shortcut.add(nn.Conv2D(num_channels, 1, strides=strides, use_bias=bias))
            if imagenet:
                self.shortcut.add(nn.BatchNorm())

    def hybrid_forward(self, F, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.shortcut is not None:
            X = self.shortcut(X)
        return F.relu(Y + X)


class Bottleneck(nn.HybridBlock):
    """1x1 (channels/4), 3x3 (stride), 1x1 (channels) with batch norm, and a
    shortcut normalised 1x1 convolution where the shape changes."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1, **kwargs):
        super().__init__(**kwargs)
        mid = num_channels // 4
        self.body = nn.HybridSequential()
        self.body.add(nn.Conv2D(mid, 1, use_bias=False), nn.BatchNorm(), nn.Activation('relu'),
                      nn.Conv2D(mid, 3, strides=strides, padding=1, use_bias=False),
                      nn.BatchNorm(), nn.Activation('relu'),
                      nn.Conv2D(num_channels, 1, use_bias=False), nn.BatchNorm())
        self.shortcut = None
        if use_1x1conv:
            self.shortcut = nn.HybridSequential()
            self.shortcut.add(nn.Conv2D(num_channels, 1, strides=strides, use_bias=False),
                              nn.BatchNorm())

    def hybrid_forward(self, F, X):
        Y = self.body(X)
        if self.shortcut is not None:
            X = self.shortcut(X)
        return F.relu(Y + X)


def resnet_block(num_channels, num_residuals, first_block=False, imagenet=False,
                 bottleneck=False):
    """A stage of `num_residuals` blocks; all but the first stage halve the size."""
    blk = nn.HybridSequential()
    for i in range(num_residuals):
        if i == 0 and (not first_block or bottleneck):
            strides = 1 if first_block else 2
            blk.add(Bottleneck(num_channels, True, strides) if bottleneck
                    else Residual(num_channels, True, strides, imagenet))
        else:
            blk.add(Bottleneck(num_channels) if bottleneck
                    else Residual(num_channels, imagenet=imagenet))
    return blk


def _stem(imagenet):
    return [nn.Conv2D(64, kernel_size=7, strides=2, padding=3, use_bias=not imagenet),
            nn.BatchNorm(), nn.Activation('relu'),
            nn.MaxPool2D(pool_size=3, strides=2, padding=1)]


@register_model(input_shape=(1, 96, 96))
def resnet18_book(num_classes=10):
    """The book's ResNet-18 for 96x96 Fashion-MNIST."""
    net = nn.HybridSequential()
    net.add(*_stem(imagenet=False))
    for i, channels in enumerate(STAGE_CHANNELS):
        net.add(resnet_block(channels, 2, first_block=(i == 0)))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


def resnet(depth, num_classes=1000):
    """The ImageNet ResNet of `depth` (18, 34, 50, 101 or 152)."""
    if depth not in SPECS:
        raise ValueError(f'no ResNet of depth {depth}; valid: {", ".join(map(str, SPECS))}')
    kind, repeats = SPECS[depth]
    bottleneck = kind == 'bottleneck'
    widths = [c * 4 for c in STAGE_CHANNELS] if bottleneck else STAGE_CHANNELS
    net = nn.HybridSequential()
    net.add(*_stem(imagenet=True))
    for i, (channels, n) in enumerate(zip(widths, repeats, strict=True)):
        net.add(resnet_block(channels, n, first_block=(i == 0), imagenet=True,
                             bottleneck=bottleneck))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    return net


@register_model(input_shape=(3, 224, 224))
def resnet18(num_classes=1000):
    """ResNet-18, basic blocks (2, 2, 2, 2)."""
    return resnet(18, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet34(num_classes=1000):
    """ResNet-34, basic blocks (3, 4, 6, 3)."""
    return resnet(34, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet50(num_classes=1000):
    """ResNet-50, bottleneck blocks (3, 4, 6, 3)."""
    return resnet(50, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet101(num_classes=1000):
    """ResNet-101, bottleneck blocks (3, 4, 23, 3)."""
    return resnet(101, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet152(num_classes=1000):
    """ResNet-152, bottleneck blocks (3, 8, 36, 3)."""
    return resnet(152, num_classes)
