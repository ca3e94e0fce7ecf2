"""The calculators against hand-computed cases and MXNet's own shape inference."""
import itertools

import pytest
from mxnet.gluon import nn

from d2lnets.viz.calculators import conv_output_size, receptive_field, stacked_params_ratio
from d2lnets.viz.shapes import layer_table
from d2lnets.models.alexnet import alexnet_book
from d2lnets.models.vgg import vgg_block


@pytest.mark.parametrize('args, expected', [
    ((28, 5), 24),                      # LeNet's first convolution, no padding
    ((28, 5, 2), 28),                   # ... padded by 2
    ((224, 11, 0, 4), 54),              # AlexNet: (224 - 11) / 4 + 1, floored
    ((54, 3, 0, 2), 26),                # AlexNet's pooling
    ((7, 3, 1, 2), 4),                  # (7 - 3 + 2) / 2 + 1
    ((8, 3, 0, 1, 2), 4),               # dilation 2 spans 5
    ((5, 2, 0, 2, 1, True), 3),         # ceil mode keeps the half window
])
def test_hand_computed_cases(args, expected):
    assert conv_output_size(*args) == expected


def test_agrees_with_mxnet_on_a_grid():
    for n, k, p, s in itertools.product((7, 12, 28), (1, 2, 3, 5), (0, 1, 2), (1, 2, 3)):
        if n + 2 * p < k:
            continue
        conv = nn.Conv2D(1, kernel_size=k, padding=p, strides=s)
        shape = layer_table(conv, (1, 1, n, n))[0].output_shape
        assert shape[-1] == conv_output_size(n, k, p, s), (n, k, p, s)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match='does not fit an input of 3'):
        conv_output_size(3, 5)
    with pytest.raises(ValueError, match='stride must be a whole number >= 1'):
        conv_output_size(28, 3, stride=0)


def test_receptive_field():
    assert receptive_field([(3, 1)] * 2) == 5
    assert receptive_field([(3, 1)] * 3) == 7
    assert receptive_field([(3, 1, 2)]) == 5
    # conv 11/4, pool 3/2, conv 5/1: 11 + 2*4 + 4*2*4 = 51
    assert receptive_field([(11, 4), (3, 2), (5, 1)]) == 51


def test_receptive_field_read_from_gluon_nets():
    assert receptive_field(vgg_block(2, 8)) == 5 + 1  # two 3x3, then 2x2 pooling
    assert receptive_field(vgg_block(3, 8)) == 7 + 1
    alex = alexnet_book()
    assert receptive_field(alex) == receptive_field(
        [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)])


def test_stacked_params_ratio():
    assert stacked_params_ratio(2) == pytest.approx(0.72)        # 2 x 9 / 25
    assert stacked_params_ratio(3) == pytest.approx(27 / 49)     # 0.551
    assert round(stacked_params_ratio(3), 2) == 0.55
    assert stacked_params_ratio(3, channels=64) == pytest.approx(27 / 49)
    assert stacked_params_ratio(2, channels=4, bias=True) == pytest.approx(
        2 * (9 * 16 + 4) / (25 * 16 + 4))


@pytest.mark.parametrize('args, expected', [
    ((5, 5), 1),                        # a kernel exactly as wide as the input
    ((1, 1), 1),                        # the smallest input and kernel
    ((3, 7, 2), 1),                     # padding makes it fit: 3 + 2 * 2 = 7
    ((5, 3, 0, 1, 2), 1),               # dilation 2 spans exactly 5
])
def test_a_kernel_that_just_fits_gives_one_output(args, expected):
    assert conv_output_size(*args) == expected


@pytest.mark.parametrize('args, message', [
    ((2, 7, 2), 'a kernel spanning 7 does not fit an input of 2 with padding 2'),
    ((4, 3, 0, 1, 2), 'a kernel spanning 5 does not fit an input of 4 with padding 0'),
    ((0, 3), 'n must be a whole number >= 1, got 0'),
    ((28.0, 3), 'n must be a whole number >= 1, got 28.0'),
    ((28, 0), 'kernel_size must be a whole number >= 1, got 0'),
    ((28, 3, -1), 'padding must be a whole number >= 0, got -1'),
    ((28, 3, 0, 1, 0), 'dilation must be a whole number >= 1, got 0'),
])
def test_bad_sizes_name_the_argument_and_its_bound(args, message):
    with pytest.raises(ValueError) as info:
        conv_output_size(*args)
    assert str(info.value) == message


def test_receptive_field_reads_dilation_and_stride_from_gluon_layers():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=3, dilation=2),   # spans 5
            nn.MaxPool2D(pool_size=2, strides=2),      # + 1
            nn.Conv2D(4, kernel_size=3),               # + 2 * 2
            nn.GlobalAvgPool2D())                      # sees no more than before
    assert receptive_field(net) == 5 + 1 + 4
    assert receptive_field(net) == receptive_field([(3, 1, 2), (2, 2), (3, 1)])


def test_a_net_that_is_not_a_plain_stack_is_refused_by_name():
    class Branches(nn.HybridBlock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.left = nn.Conv2D(4, kernel_size=3)
            self.right = nn.Conv2D(4, kernel_size=1)

    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=3), Branches(prefix='branches_'))
    with pytest.raises(ValueError, match=r'^branches is not a plain stack of layers; list '
                                         r'its \(kernel, stride\) pairs instead$'):
        receptive_field(net)


def test_stacked_params_ratio_with_bias_defaults_to_one_channel():
    assert stacked_params_ratio(2, bias=True) == pytest.approx(2 * (9 + 1) / (25 + 1))
