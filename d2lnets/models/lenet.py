"""LeNet: LeCun, Bottou, Bengio and Haffner, "Gradient-Based Learning Applied
to Document Recognition", Proc. IEEE 1998; D2L section 7.6 ("Convolutional
Neural Networks (LeNet)"; 5.5 in the book's first MXNet edition).

Two editions of the book differ: the first MXNet edition uses no padding and
max pooling; later editions pad the first convolution by 2 (as LeNet-5's
32x32 input does for 28x28 digits) and use average pooling. Both use sigmoid.
"""
from mxnet.gluon import nn

from .registry import register_model

EDITIONS = {
    'first': dict(padding=0, pool=nn.MaxPool2D),
    'later': dict(padding=2, pool=nn.AvgPool2D),
}


def lenet_layers(edition='later', num_classes=10, norm=None):
    """The layers of LeNet, in order. `norm(num_features, num_dims)`, a block
    factory, goes after every convolution (4 dims) and hidden dense layer
    (2 dims), before its sigmoid, as the book's batch-normalised LeNet does."""
    if edition not in EDITIONS:
        raise ValueError(f'unknown LeNet edition {edition!r}; valid: {", ".join(EDITIONS)}')
    padding, pool = EDITIONS[edition]['padding'], EDITIONS[edition]['pool']
    act = None if norm else 'sigmoid'
    layers = []

    def add(layer, features, dims):
        layers.append(layer)
        if norm:
            layers.extend([norm(features, dims), nn.Activation('sigmoid')])

    add(nn.Conv2D(6, kernel_size=5, padding=padding, activation=act), 6, 4)
    layers.append(pool(pool_size=2, strides=2))
    add(nn.Conv2D(16, kernel_size=5, activation=act), 16, 4)
    layers.append(pool(pool_size=2, strides=2))
    add(nn.Dense(120, activation=act), 120, 2)
    add(nn.Dense(84, activation=act), 84, 2)
    layers.append(nn.Dense(num_classes))
    return layers


@register_model(input_shape=(1, 28, 28))
def lenet(edition='later', num_classes=10):
    """LeNet as the book builds it, a `HybridSequential`; `edition='first'` for
    the first MXNet edition."""
    net = nn.HybridSequential()
    net.add(*lenet_layers(edition, num_classes))
    return net


@register_model(input_shape=(1, 28, 28))
def lenet_first_edition(num_classes=10):
    """LeNet of the book's first MXNet edition: no padding, max pooling."""
    return lenet('first', num_classes)
