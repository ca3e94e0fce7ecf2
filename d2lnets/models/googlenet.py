"""GoogLeNet: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015
(arXiv:1409.4842); D2L section 8.4 ("Multi-Branch Networks"; 5.9 in the
book's first MXNet edition).

An Inception block runs four paths side by side and concatenates them on the
channel axis: a 1x1 convolution (c1); 1x1 then 3x3 (c2); 1x1 then 5x5 (c3);
3x3 max pooling then 1x1 (c4). The nine blocks differ only in these numbers,
the rows of `INCEPTIONS` (the paper's Table 1).
"""
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

from .registry import register_model

# stage -> rows of (c1, (c2 reduce, c2), (c3 reduce, c3), c4)
INCEPTIONS = {
    3: ((64, (96, 128), (16, 32), 32),               # 3a -> 256 channels
        (128, (128, 192), (32, 96), 64)),            # 3b -> 480
    4: ((192, (96, 208), (16, 48), 64),              # 4a -> 512
        (160, (112, 224), (24, 64), 64),             # 4b -> 512
        (128, (128, 256), (24, 64), 64),             # 4c -> 512
        (112, (144, 288), (32, 64), 64),             # 4d -> 528
        (256, (160, 320), (32, 128), 128)),          # 4e -> 832
    5: ((256, (160, 320), (32, 128), 128),           # 5a -> 832
        (384, (192, 384), (48, 128), 128)),          # 5b -> 1024
}


class Inception(HybridConcurrent):
    """The four-path Inception block: output channels c1 + c2[1] + c3[1] + c4."""

    def __init__(self, c1, c2, c3, c4, **kwargs):
        super().__init__(axis=1, **kwargs)
        p1 = nn.Conv2D(c1, kernel_size=1, activation='relu')
        p2 = nn.HybridSequential()
        p2.add(nn.Conv2D(c2[0], kernel_size=1, activation='relu'),
               nn.Conv2D(c2[1], kernel_size=3, padding=1, activation='relu'))
        p3 = nn.HybridSequential()
        p3.add(nn.Conv2D(c3[0], kernel_size=1, activation='relu'),
               nn.Conv2D(c3[1], kernel_size=5, padding=2, activation='relu'))
        p4 = nn.HybridSequential()
        p4.add(nn.MaxPool2D(pool_size=3, strides=1, padding=1),
               nn.Conv2D(c4, kernel_size=1, activation='relu'))
        self.add(p1, p2, p3, p4)


def _stage(rows, pool):
    stage = nn.HybridSequential()
    stage.add(*(Inception(*row) for row in rows))
    stage.add(nn.MaxPool2D(pool_size=3, strides=2, padding=1) if pool else nn.GlobalAvgPool2D())
    return stage


@register_model(input_shape=(1, 96, 96))
def googlenet(num_classes=10):
    """The book's GoogLeNet (five stages, then the output layer); it takes any
    number of input channels, so `num_classes=10` on 3-channel 32x32 or
    96x96 images is the CIFAR-10 variant."""
    b1 = nn.HybridSequential()   # N x 64 x H/4 x W/4
    b1.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3, activation='relu'),
           nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    b2 = nn.HybridSequential()   # N x 192 x H/8 x W/8
    b2.add(nn.Conv2D(64, kernel_size=1, activation='relu'),
           nn.Conv2D(192, kernel_size=3, padding=1, activation='relu'),
           nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    net = nn.HybridSequential()
    net.add(b1, b2,
            _stage(INCEPTIONS[3], pool=True),    # N x 480 x H/16 x W/16
            _stage(INCEPTIONS[4], pool=True),    # N x 832 x H/32 x W/32
            _stage(INCEPTIONS[5], pool=False),   # N x 1024 x 1 x 1
            nn.Dense(num_classes))
    return net


@register_model(input_shape=(3, 32, 32))
def googlenet_cifar10(num_classes=10):
    """The book's GoogLeNet on 3-channel CIFAR-10 images (32x32, or resized)."""
    return googlenet(num_classes)
