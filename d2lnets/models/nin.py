"""Network in Network: Lin, Chen and Yan, "Network In Network", ICLR 2014
(arXiv:1312.4400); D2L section 8.3 (5.8 in the book's first MXNet edition).

Each NiN block is a convolution followed by two 1x1 convolutions (a per-pixel
MLP); the last block has one channel per class and global average pooling
replaces the fully-connected layers.
"""
from mxnet.gluon import nn

from .registry import register_model


def nin_block(num_channels, kernel_size, strides, padding):
    """A convolution and two 1x1 convolutions, all with ReLU."""
    blk = nn.HybridSequential()
    blk.add(nn.Conv2D(num_channels, kernel_size, strides, padding, activation='relu'),
            nn.Conv2D(num_channels, kernel_size=1, activation='relu'),
            nn.Conv2D(num_channels, kernel_size=1, activation='relu'))
    return blk


@register_model(input_shape=(1, 224, 224))
def nin(num_classes=10, dropout=0.5):
    """The book's NiN for 224x224 Fashion-MNIST."""
    net = nn.HybridSequential()
    net.add(nin_block(96, kernel_size=11, strides=4, padding=0),
            nn.MaxPool2D(pool_size=3, strides=2),
            nin_block(256, kernel_size=5, strides=1, padding=2),
            nn.MaxPool2D(pool_size=3, strides=2),
            nin_block(384, kernel_size=3, strides=1, padding=1),
            nn.MaxPool2D(pool_size=3, strides=2), nn.Dropout(dropout),
            nin_block(num_classes, kernel_size=3, strides=1, padding=1),
            nn.GlobalAvgPool2D(), nn.Flatten())
    return net
