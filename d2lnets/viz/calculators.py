"""The arithmetic of convolutional layers that the chapters walk through.

- `conv_output_size`: a convolution's or pooling's output side,
  floor((n + 2p - d(k - 1) - 1) / s) + 1, which is (n - k + 2p) / s + 1 for
  d = 1 when s divides evenly (D2L sections 7.3 and 7.5).
- `receptive_field`: how many input pixels one output pixel of a stack of
  layers sees (VGG's argument for 3x3 stacks, Simonyan and Zisserman 2015,
  section 2.3), for a list of (kernel, stride[, dilation]) or a Gluon net.
- `stacked_params_ratio`: weights of `n` stacked k x k layers against one
  layer of the same receptive field, C channels in and out: 2 x 9C^2 / 25C^2
  = 0.72 and 3 x 9C^2 / 49C^2 = 0.55.
"""
import itertools
import math

from mxnet.gluon import nn


def conv_output_size(n, kernel_size, padding=0, stride=1, dilation=1, ceil_mode=False):
    """The output side of a convolution or pooling over an input side `n`."""
    for name, value, least in (('n', n, 1), ('kernel_size', kernel_size, 1),
                               ('padding', padding, 0), ('stride', stride, 1),
                               ('dilation', dilation, 1)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f'{name} must be a whole number >= {least}, got {value!r}')
    span = dilation * (kernel_size - 1) + 1
    if n + 2 * padding < span:
        raise ValueError(f'a kernel spanning {span} does not fit an input of {n} '
                         f'with padding {padding}')
    steps = (n + 2 * padding - span) / stride
    return (math.ceil(steps) if ceil_mode else math.floor(steps)) + 1


def receptive_field(layers):
    """The receptive field of a stack of layers, first layer first.

    `layers` is a list of (kernel, stride) or (kernel, stride, dilation), or a
    Gluon (Hybrid)Sequential whose convolutions and poolings are read in order
    up to its first fully-connected layer, which sees its whole input.
    """
    if isinstance(layers, nn.Block):
        layers = list(itertools.takewhile(lambda layer: layer is not None,
                                          _kernel_stride_dilation(layers)))
    field, jump = 1, 1
    for layer in layers:
        kernel, stride, dilation = (tuple(layer) + (1,))[:3]
        field += (kernel - 1) * dilation * jump
        jump *= stride
    return field


def _kernel_stride_dilation(block):
    """(kernel, stride, dilation) of each convolution and pooling in `block`, in order
    (square kernels, as the book's networks have); None at a fully-connected layer."""
    if isinstance(block, nn.Dense):
        yield None
        return
    kwargs = getattr(block, '_kwargs', {})
    if 'kernel' in kwargs:  # a convolution or pooling (its activation is a child)
        if not kwargs.get('global_pool', False):
            yield kwargs['kernel'][0], kwargs['stride'][0], kwargs.get('dilate', (1,))[0]
        return
    children = list(block._children.values())
    if children and not isinstance(block, (nn.Sequential, nn.HybridSequential)):
        raise ValueError(f'{block.name} is not a plain stack of layers; list its '
                         f'(kernel, stride) pairs instead')
    for child in children:
        yield from _kernel_stride_dilation(child)


def stacked_params_ratio(num_layers, kernel_size=3, channels=1, bias=False):
    """Weights of `num_layers` stacked `kernel_size` convolutions divided by those
    of the one convolution with the same receptive field, `channels` in and out."""
    big = receptive_field([(kernel_size, 1)] * num_layers)
    per_layer = kernel_size ** 2 * channels ** 2 + (channels if bias else 0)
    single = big ** 2 * channels ** 2 + (channels if bias else 0)
    return num_layers * per_layer / single
