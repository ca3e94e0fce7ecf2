"""AlexNet: Krizhevsky, Sutskever and Hinton, "ImageNet Classification with
Deep Convolutional Neural Networks", NeurIPS 2012; D2L section 8.1 (5.6 in the
book's first MXNet edition).

The book's network keeps the paper's widths (96, 256, 384, 384, 256) on one
device, as one flat sequence of layers. The full-size ImageNet network is the
single-tower variant of Krizhevsky's "One weird trick" (arXiv:1404.5997) that
MXNet's model zoo and torchvision ship (64, 192, 384, 256, 256, first
convolution padded by 2), laid out as the zoo's `alexnet` (`features`, then
`output`), so zoo files load by name.
"""
from mxnet.gluon import nn

from .classifier import Classifier
from .registry import register_model

# (channels of the five convolutions, padding of the first)
SPECS = {
    'book': ((96, 256, 384, 384, 256), 0),
    'imagenet': ((64, 192, 384, 256, 256), 2),
}


def alexnet_features(channels, first_padding=0, fc_units=4096, dropout=0.5, flatten=False):
    """Five convolutions (11x11 stride 4, 5x5, three 3x3) with three 3x3 stride-2
    max poolings, then two dropout-regularised dense layers: every layer but
    the output. `flatten` puts an explicit `Flatten` before the dense layers
    (which flatten their input anyway), where the model zoo has one."""
    c1, c2, c3, c4, c5 = channels
    layers = [nn.Conv2D(c1, kernel_size=11, strides=4, padding=first_padding, activation='relu'),
              nn.MaxPool2D(pool_size=3, strides=2),
              nn.Conv2D(c2, kernel_size=5, padding=2, activation='relu'),
              nn.MaxPool2D(pool_size=3, strides=2),
              nn.Conv2D(c3, kernel_size=3, padding=1, activation='relu'),
              nn.Conv2D(c4, kernel_size=3, padding=1, activation='relu'),
              nn.Conv2D(c5, kernel_size=3, padding=1, activation='relu'),
              nn.MaxPool2D(pool_size=3, strides=2)]
    if flatten:
        layers.append(nn.Flatten())
    return layers + [nn.Dense(fc_units, activation='relu'), nn.Dropout(dropout),
                     nn.Dense(fc_units, activation='relu'), nn.Dropout(dropout)]


def alexnet(channels=SPECS['book'][0], first_padding=0, num_classes=10, fc_units=4096,
            dropout=0.5):
    """AlexNet as one flat HybridSequential (the book's shape table)."""
    net = nn.HybridSequential()
    net.add(*alexnet_features(channels, first_padding, fc_units, dropout),
            nn.Dense(num_classes))
    return net


@register_model(input_shape=(1, 224, 224))
def alexnet_book(num_classes=10, **kwargs):
    """The book's AlexNet for 224x224 Fashion-MNIST."""
    channels, padding = SPECS['book']
    return alexnet(channels, padding, num_classes=num_classes, **kwargs)


@register_model(input_shape=(3, 224, 224))
def alexnet_imagenet(num_classes=1000, fc_units=4096, dropout=0.5):
    """The full-size ImageNet AlexNet of MXNet's model zoo (61.1 million
    parameters), laid out as the zoo's: `features`, then `output`."""
    channels, padding = SPECS['imagenet']
    return Classifier(lambda: alexnet_features(channels, padding, fc_units, dropout, flatten=True),
                      lambda: nn.Dense(num_classes, prefix='output_'), prefix='alexnet_')
