"""Max and average pooling that compute exactly what `nn.MaxPool2D` and
`nn.AvgPool2D` compute, one image plane at a time, for layers with few
channels (LeNet's first pooling layer: 6 channels; D2L section 7.6).

Why: MXNet 1.9.1 hands every float32 `Pooling` in NCHW layout to oneDNN,
and oneDNN keeps a tensor whose channel count is not a multiple of 8 in the
plain NCHW layout, where its pooling runs its slowest implementation
(`simple_nchw`); on LeNet's 256x6x24x24 activations that is about three
times MXNet's own kernel (docs/results.md, "LeNet against PyTorch"). Pooling
treats every (image, channel) plane alike, so the planes can be pooled as
N*C single-channel images in NHWC layout, which oneDNN does not take: MXNet's
own kernel runs, and the result and its gradient are the same numbers.
Layers whose channels oneDNN blocks (8, 16, 96, ...) run fast as they are
and should keep `nn.MaxPool2D`. The classes keep Gluon's names, so a network
prints as the book's does: `planewise.MaxPool2D` is `nn.MaxPool2D` (a
subclass) with another kernel underneath.
"""
from mxnet.gluon import nn


class _Planewise:
    """Pool (N, C, H, W) as N*C images of one channel in NHWC layout."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self._kwargs['layout'] != 'NCHW':
            raise ValueError(f'planewise.{type(self).__name__} pools NCHW input only, got '
                             f'layout {self._kwargs["layout"]!r}; use nn.{type(self).__name__}')

    def hybrid_forward(self, F, x):
        planes = F.expand_dims(F.reshape(x, (-3, -2)), axis=3)   # (N*C, H, W, 1)
        pooled = F.squeeze(F.Pooling(planes, name='fwd', **dict(self._kwargs, layout='NHWC')),
                           axis=3)                               # (N*C, H', W')
        return F.reshape_like(pooled, x, lhs_begin=0, lhs_end=1, rhs_begin=0, rhs_end=2)


class MaxPool2D(_Planewise, nn.MaxPool2D):
    """`nn.MaxPool2D`, run plane by plane on MXNet's own kernel (see the module)."""


class AvgPool2D(_Planewise, nn.AvgPool2D):
    """`nn.AvgPool2D`, run plane by plane on MXNet's own kernel (see the module)."""
