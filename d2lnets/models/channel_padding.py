"""A `HybridSequential` that runs a narrow convolution (fewer than 8 output
channels, as LeNet's first has 6) at 8 channels, for speed on CPUs.

Why: oneDNN, MXNet's CPU backend, keeps a convolution's output in its blocked
layout (8 channels to a block) only when the convolution has 8 or more output
channels. LeNet's first convolution has 6, so its activations stay in the
plain NCHW layout, and oneDNN pools them and runs the next convolution's
backward pass with its slowest kernels (`simple_nchw` pooling and GEMM
convolutions; `DNNL_VERBOSE=1` names them). docs/results.md, "LeNet's narrow
first layer, padded to 8 channels", has the profiles and timings.

What: the layers stay the book's, one child each, with their own parameters,
names and shapes, so printing the network, the layer-by-layer shape printout,
saved parameters and parameter counts are unchanged. Only the forward pass
differs, and only for a run of three children: a `Conv2D` with fewer than 8
output channels, a `MaxPool2D` or `AvgPool2D`, and a second `Conv2D`. There
the first convolution gets zero filters (zero weights, zero bias) up to 8
output channels, its activation and the pooling run on all 8, and the second
convolution gets zero weights for the added input channels. The added
channels are constant and meet only zero weights, so the output and every
parameter's gradient equal those of the plain sequence (up to float32
rounding: oneDNN sums in another order). Everything else runs as in
`HybridSequential`.
"""
from mxnet import symbol
from mxnet.gluon import nn
from mxnet.gluon.parameter import DeferredInitializationError

BLOCK_CHANNELS = 8
POOLINGS = (nn.MaxPool2D, nn.AvgPool2D)


def _plain_conv(layer):
    return (isinstance(layer, nn.Conv2D) and layer._kwargs['layout'] == 'NCHW'
            and layer._kwargs['num_group'] == 1)


def _paddable(first, pool, second):
    """Whether three consecutive layers are a narrow convolution, a pooling and
    a convolution that reads the first's channels."""
    return (_plain_conv(first) and first._channels < BLOCK_CHANNELS
            and isinstance(pool, POOLINGS) and pool._kwargs['layout'] == 'NCHW'
            and _plain_conv(second) and second.weight.shape[1] in (0, first._channels))


class ChannelPaddedSequential(nn.HybridSequential):
    """`nn.HybridSequential` whose narrow convolution, pooling and next
    convolution run at 8 channels (see the module's docstring)."""

    def hybrid_forward(self, F, x):
        layers = list(self._children.values())
        i = 0
        while i < len(layers):
            if i + 2 < len(layers) and _paddable(*layers[i:i + 3]):
                padded = _padded_stage(F, x, *layers[i:i + 3])
                if padded is not None:
                    x = padded
                    i += 3
                    continue
            x = layers[i](x)
            i += 1
        return x


def _padded_stage(F, x, first, pool, second):
    """`second(pool(first(x)))`, with `first` padded to 8 output channels; None
    when the parameters are not initialized yet (an imperative first call:
    the plain layers then initialize them)."""
    extra = BLOCK_CHANNELS - first._channels
    try:
        first_weight, first_bias = _arrays(F, x, first)
        second_weight, second_bias = _arrays(F, x, second)
    except DeferredInitializationError:
        return None

    first_args = [F.concat(first_weight, _zeros(F, first_weight, 0, extra), dim=0)]
    if first_bias is not None:
        first_args.append(F.concat(first_bias, _zeros(F, first_bias, 0, extra), dim=0))
    y = F.Convolution(x, *first_args, **dict(first._kwargs, num_filter=BLOCK_CHANNELS))
    if first.act is not None:
        y = first.act(y)
    y = pool(y)

    # The reshape to its known shape lets MXNet infer a deferred weight's
    # input channels, which the concatenation alone leaves open.
    kernel = second._kwargs['kernel']
    second_weight = F.reshape(second_weight, shape=(second._channels, first._channels) + kernel)
    second_args = [F.concat(second_weight, _zeros(F, second_weight, 1, extra), dim=1)]
    if second_bias is not None:
        second_args.append(second_bias)
    y = F.Convolution(y, *second_args, **second._kwargs)
    return second.act(y) if second.act is not None else y


def _zeros(F, like, axis, size):
    """Zeros of `like`'s shape and type, but `size` long on `axis`."""
    return F.zeros_like(F.repeat(F.slice_axis(like, axis=axis, begin=0, end=1), size, axis))


def _arrays(F, x, conv):
    """(weight, bias or None) of `conv` as graph variables or as arrays on x's context."""
    def array(param):
        if param is None:
            return None
        return param.var() if F is symbol else param.data(x.context)
    return array(conv.weight), array(conv.bias)
