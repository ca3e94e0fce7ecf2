"""ResNet: He, Zhang, Ren and Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (arXiv:1512.03385); D2L section 8.6 (5.11 in the
book's first MXNet edition).

The book's `Residual` block has biased convolutions and a plain 1x1
convolution on the shortcut. The ImageNet networks of the paper's Table 1
drop the biases, normalise the shortcut and use bottleneck blocks from 50
layers on; they are laid out as MXNet's model zoo lays out its `resnet*_v1`
(`features` with stages `stage1_` to `stage4_`, blocks of `body` and
`downsample`, then `output`), so zoo files load by name.

ResNet-18 and 34 are the zoo's `resnet18_v1` and `resnet34_v1` exactly. From
50 layers on two bottleneck layouts exist:

- `resnet50`, `resnet101`, `resnet152` ("v1.5", GluonCV's `v1b`, torchvision's
  layout, the parameter counts torchvision publishes): the stride of a
  downsampling block is on its 3x3 convolution and no convolution has a bias.
- `resnet50_v1`, `resnet101_v1`, `resnet152_v1`, the model zoo's
  `resnet*_v1`: the stride is on the block's first 1x1 convolution, and its
  first and last 1x1 convolutions have biases.
"""
from mxnet.gluon import nn

from .classifier import Classifier
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
# bottleneck layout -> (stride on the first 1x1 rather than the 3x3, biases on both 1x1s)
LAYOUTS = {'v1.5': (False, False), 'v1': (True, True)}


class Residual(nn.HybridBlock):
    """Two 3x3 convolutions with batch norm and a shortcut (the book's block):
    `relu(body(X) + X)`, where `body` is conv-BN-ReLU-conv-BN.

    `use_1x1conv` puts a 1x1 convolution (stride `strides`) on the shortcut
    (`downsample`); `imagenet=True` removes the convolutions' biases and
    normalises the shortcut, as the ImageNet ResNets do.
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, imagenet=False, **kwargs):
        super().__init__(**kwargs)
        bias = not imagenet
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            self.body.add(nn.Conv2D(num_channels, 3, strides=strides, padding=1, use_bias=bias),
                          nn.BatchNorm(), nn.Activation('relu'),
                          nn.Conv2D(num_channels, 3, padding=1, use_bias=bias), nn.BatchNorm())
            self.downsample = (_shortcut(num_channels, strides, normalised=imagenet)
                               if use_1x1conv else None)

    def hybrid_forward(self, F, X):
        Y = self.body(X)
        if self.downsample is not None:
            X = self.downsample(X)
        return F.relu(Y + X)


class Bottleneck(Residual):
    """1x1 (channels/4), 3x3, 1x1 (channels) convolutions with batch norm, and a
    normalised 1x1 convolution on the shortcut where the shape changes.

    `layout` 'v1.5' strides the 3x3 convolution and has no biases; 'v1' (the
    model zoo's) strides the first 1x1 and gives both 1x1 convolutions biases.
    """

    def __init__(self, num_channels, use_1x1conv=False, strides=1, layout='v1.5', **kwargs):
        nn.HybridBlock.__init__(self, **kwargs)
        if layout not in LAYOUTS:
            raise ValueError(f'unknown bottleneck layout {layout!r}; valid: {", ".join(LAYOUTS)}')
        stride_first, bias = LAYOUTS[layout]
        first, middle = (strides, 1) if stride_first else (1, strides)
        mid = num_channels // 4
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            self.body.add(nn.Conv2D(mid, 1, strides=first, use_bias=bias), nn.BatchNorm(),
                          nn.Activation('relu'),
                          nn.Conv2D(mid, 3, strides=middle, padding=1, use_bias=False),
                          nn.BatchNorm(), nn.Activation('relu'),
                          nn.Conv2D(num_channels, 1, use_bias=bias), nn.BatchNorm())
            self.downsample = (_shortcut(num_channels, strides, normalised=True)
                               if use_1x1conv else None)


def _shortcut(num_channels, strides, normalised):
    """The 1x1 convolution on a shortcut whose shape changes (bias-free and
    batch-normalised in the ImageNet networks)."""
    blk = nn.HybridSequential(prefix='')
    blk.add(nn.Conv2D(num_channels, 1, strides=strides, use_bias=not normalised))
    if normalised:
        blk.add(nn.BatchNorm())
    return blk


def resnet_block(num_channels, num_residuals, first_block=False, imagenet=False,
                 layout=None, prefix=None):
    """A stage of `num_residuals` blocks; all but the first stage halve the size.
    `layout` ('v1.5' or 'v1') makes them bottleneck blocks."""
    blk = nn.HybridSequential(prefix=prefix)
    with blk.name_scope():
        for i in range(num_residuals):
            if i == 0 and (not first_block or layout):
                strides = 1 if first_block else 2
                blk.add(Bottleneck(num_channels, True, strides, layout) if layout
                        else Residual(num_channels, True, strides, imagenet))
            else:
                blk.add(Bottleneck(num_channels, layout=layout) if layout
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


def resnet(depth, num_classes=1000, layout='v1.5'):
    """The ImageNet ResNet of `depth` (18, 34, 50, 101 or 152); `layout` ('v1.5'
    or 'v1') chooses the bottleneck blocks' from 50 layers on."""
    if depth not in SPECS:
        raise ValueError(f'no ResNet of depth {depth}; valid: {", ".join(map(str, SPECS))}')
    kind, repeats = SPECS[depth]
    bottleneck = kind == 'bottleneck'
    widths = [c * 4 for c in STAGE_CHANNELS] if bottleneck else STAGE_CHANNELS

    def features():
        layers = _stem(imagenet=True)
        for i, (channels, n) in enumerate(zip(widths, repeats, strict=True)):
            layers.append(resnet_block(channels, n, first_block=(i == 0), imagenet=True,
                                       layout=layout if bottleneck else None,
                                       prefix=f'stage{i + 1}_'))
        return layers + [nn.GlobalAvgPool2D()]

    suffix = '_v1' if bottleneck and layout == 'v1' else ''
    return Classifier(features, lambda: nn.Dense(num_classes, prefix='output_'),
                      prefix=f'resnet{depth}{suffix}_')


@register_model(input_shape=(3, 224, 224))
def resnet18(num_classes=1000):
    """ResNet-18, basic blocks (2, 2, 2, 2): the model zoo's `resnet18_v1`."""
    return resnet(18, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet34(num_classes=1000):
    """ResNet-34, basic blocks (3, 4, 6, 3): the model zoo's `resnet34_v1`."""
    return resnet(34, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet50(num_classes=1000):
    """ResNet-50 v1.5, bottleneck blocks (3, 4, 6, 3), stride on the 3x3."""
    return resnet(50, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet101(num_classes=1000):
    """ResNet-101 v1.5, bottleneck blocks (3, 4, 23, 3), stride on the 3x3."""
    return resnet(101, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet152(num_classes=1000):
    """ResNet-152 v1.5, bottleneck blocks (3, 8, 36, 3), stride on the 3x3."""
    return resnet(152, num_classes)


@register_model(input_shape=(3, 224, 224))
def resnet50_v1(num_classes=1000):
    """ResNet-50 as the model zoo's `resnet50_v1`: stride on the first 1x1, biased 1x1s."""
    return resnet(50, num_classes, layout='v1')


@register_model(input_shape=(3, 224, 224))
def resnet101_v1(num_classes=1000):
    """ResNet-101 as the model zoo's `resnet101_v1`: stride on the first 1x1, biased 1x1s."""
    return resnet(101, num_classes, layout='v1')


@register_model(input_shape=(3, 224, 224))
def resnet152_v1(num_classes=1000):
    """ResNet-152 as the model zoo's `resnet152_v1`: stride on the first 1x1, biased 1x1s."""
    return resnet(152, num_classes, layout='v1')
