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
