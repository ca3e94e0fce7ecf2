"""The behavioural checker: right answers written any way pass, typical
mistakes fail with the first place they go wrong, and student code that
raises or loops becomes a one-line verdict."""
import time

from mxnet import nd
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

from d2lnets.classroom.checker import check_assignment, check_builder
from d2lnets.models.googlenet import Inception
from d2lnets.models.resnet import Residual
from d2lnets.models.vgg import vgg_block

SHAPE = (1, 3, 16, 16)


def vgg(*layers):
    blk = nn.HybridSequential()
    blk.add(*layers)
    return blk


def conv(channels=8, padding=1, kernel=3, activation='relu', **kwargs):
    return nn.Conv2D(channels, kernel_size=kernel, padding=padding, activation=activation,
                     **kwargs)


def pool():
    return nn.MaxPool2D(pool_size=2, strides=2)


def check(block):
    return check_assignment(block, vgg_block(2, 8), SHAPE)


def test_the_reference_and_equivalent_writings_pass():
    assert check(vgg_block(2, 8)).passed
    assert check(vgg(vgg(conv(), conv()), pool())).passed      # nested differently
    separate = vgg(conv(activation=None), nn.Activation('relu'),
                   conv(activation=None), nn.Activation('relu'), pool())
    result = check(separate)
    assert result.passed, result.message
    assert result.message == ('right: the same output as the reference on a seeded input '
                              '(1x8x8x8, through 3 layers)')


def test_wrong_activation_and_wrong_pooling():
    sigmoid = check(vgg(conv(activation='sigmoid'), conv(activation='sigmoid'),
                        nn.AvgPool2D(pool_size=2, strides=2)))
    assert not sigmoid.passed
    assert sigmoid.message == 'layer 1 (convolution): expected relu activation, yours has sigmoid'
    average = check(vgg(conv(), conv(), nn.AvgPool2D(pool_size=2, strides=2)))
    assert average.message == 'layer 3: expected max pooling, yours is average pooling'
    no_relu = check(vgg(conv(), conv(activation=None), pool()))
    assert no_relu.message == 'layer 2 (convolution): expected relu activation, yours has none'


def test_missing_padding_names_the_layer_and_the_fix():
    result = check(vgg(conv(padding=0), conv(), pool()))
    assert not result.passed
    assert result.message == ('layer 1 (convolution): your output is 1x8x14x14, expected '
                              '1x8x16x16: did you forget padding=1?')


def test_missing_and_extra_layers():
    assert check(vgg(conv(), conv())).message == (
        'your block has 2 layers, expected 3: layer 3 (max pooling, output 1x8x8x8) is missing')
    assert check(vgg(conv(), conv(), pool(), nn.MaxPool2D())).message.endswith(
        'layer 4 (max pooling) is extra')
    # a dropout does nothing in prediction: not a difference
    assert check(vgg(conv(), conv(), nn.Dropout(0.5), pool())).passed


def test_parameters_that_do_not_line_up():
    result = check(vgg(conv(use_bias=False), conv(), pool()))
    assert not result.passed
    assert result.message == ('layer 1 (convolution): your parameters have shapes 8x3x3x3, '
                              'expected 8x3x3x3, 8: did you turn its bias off (use_bias=False)?')
    wide = check(vgg(conv(channels=16), conv(), pool()))
    assert wide.message == ('layer 1 (convolution): your parameters have shapes 16x3x3x3, 16, '
                            'expected 8x3x3x3, 8: check its number of channels')


def test_student_code_that_raises_or_loops_becomes_one_line():
    class Broken(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return x.reshape((7, 7))

    def looping(num_convs, num_channels):
        while True:
            pass

    result = check(Broken())
    assert not result.passed and '\n' not in result.message
    assert result.message == ('your block raised ValueError: Cannot reshape array of size 768 '
                              'into shape (7, 7)')
    too_big = check(vgg(conv(kernel=40, padding=0), conv(), pool()))
    assert not too_big.passed and '\n' not in too_big.message
    assert too_big.message.startswith('your block raised ') and 'kernel size' in too_big.message
    start = time.time()
    result = check_builder(looping, vgg_block, (2, 8), SHAPE, timeout=1)
    assert time.time() - start < 10
    assert result.message == ('looping did not finish within 1 s: is there a loop that '
                              'never ends?')


class BookResidual(nn.Block):
    """The book's Residual, an imperative nn.Block with another order of layers."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1, combine=None, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2D(num_channels, kernel_size=1, strides=strides)
                      if use_1x1conv else None)
        self.bn1, self.bn2 = nn.BatchNorm(), nn.BatchNorm()
        self.combine = combine or (lambda Y, X: nd.relu(Y + X))

    def forward(self, X):
        Y = nd.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return self.combine(Y, X)


def test_the_books_residual_passes_and_wrong_sums_fail():
    for args, shape in (((3,), (2, 3, 6, 6)), ((6, True, 2), (2, 3, 8, 8))):
        assert check_assignment(BookResidual(*args), Residual(*args), shape).passed
    no_relu = check_assignment(BookResidual(3, combine=lambda Y, X: Y + X), Residual(3),
                               (2, 3, 6, 6))
    assert no_relu.message == ('every layer matches, but your output has negative numbers '
                               'where the expected one has none: is the ReLU after the sum '
                               '(or at the end) missing?')
    product = check_assignment(BookResidual(3, combine=lambda Y, X: Y * X), Residual(3),
                               (2, 3, 6, 6))
    assert not product.passed
    assert product.message.startswith('every layer matches, but the block\'s output differs')


class MyInception(nn.HybridBlock):
    """An Inception of another class name, paths as attributes, concatenated in `order`."""

    def __init__(self, c1, c2, c3, c4, order=(0, 1, 2, 3), **kwargs):
        super().__init__(**kwargs)
        self.order = order
        self.p1 = nn.Conv2D(c1, 1, activation='relu')
        self.p2a, self.p2b = nn.Conv2D(c2[0], 1), nn.Conv2D(c2[1], 3, padding=1)
        self.p3a, self.p3b = nn.Conv2D(c3[0], 1), nn.Conv2D(c3[1], 5, padding=2)
        self.p4a, self.p4b = nn.MaxPool2D(3, 1, 1), nn.Conv2D(c4, 1)

    def hybrid_forward(self, F, x):
        paths = [self.p1(x), F.relu(self.p2b(F.relu(self.p2a(x)))),
                 F.relu(self.p3b(F.relu(self.p3a(x)))), F.relu(self.p4b(self.p4a(x)))]
        return F.concat(*(paths[i] for i in self.order), dim=1)


def test_inception_judged_by_children_and_outputs_not_class_name():
    args, shape = (4, (3, 6), (2, 5), 3), (1, 4, 8, 8)
    assert check_assignment(MyInception(*args), Inception(*args), shape).passed
    concurrent = HybridConcurrent(axis=1)        # the library's structure, built by hand
    concurrent.add(*Inception(*args)._children.values())
    assert check_assignment(concurrent, Inception(*args), shape).passed
    swapped = check_assignment(MyInception(*args, order=(1, 0, 2, 3)), Inception(*args), shape)
    assert swapped.message == ('your output has the right channels in another order: check '
                               'the order in which you concatenate the paths')


class Returning(nn.HybridBlock):
    """vgg_block(2, 8)'s layers, returning `shape(output)` from its forward."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = shape
        self.body = vgg(conv(), conv(), pool())

    def hybrid_forward(self, F, x):
        return self.shape(self.body(x))


def test_everything_the_block_returns_is_judged():
    assert check(Returning(lambda out: out)).passed
    cases = {'your block returned a tuple of 2 arrays, expected one array':
             lambda out: (out, out * 0),
             'your block returned a list of 1 array, expected one array': lambda out: [out],
             'your block returned an object of type dict, expected one array':
             lambda out: {'out': out}}
    for message, shape in cases.items():
        result = check(Returning(shape))
        assert not result.passed and result.message == message
