"""Check a student's block against the chapter's reference, layer by layer.

Both are run (by symbolic shape inference) on the same input; their layers --
convolutions, poolings, dense layers and so on, with plain Sequential
containers opened up -- are compared in order by kind, output shape and
parameter count, and the first difference is reported in words::

    layer 3 (conv): expected output (1, 128, 56, 56), got (1, 128, 112, 112)
"""
from collections import namedtuple

import mxnet as mx
import numpy as np
from mxnet.gluon import nn

from .._messages import first_line
from ..viz.shapes import infer_block

Layer = namedtuple('Layer', 'kind output_shape params')
CheckResult = namedtuple('CheckResult', 'ok message')

_KINDS = ((nn.Conv2D, 'conv'), (nn.Dense, 'dense'), (nn.BatchNorm, 'batchnorm'),
          (nn.Activation, 'activation'), (nn.Dropout, 'dropout'), (nn.Flatten, 'flatten'),
          (nn.MaxPool2D, 'pool'), (nn.AvgPool2D, 'pool'), (nn.GlobalMaxPool2D, 'pool'),
          (nn.GlobalAvgPool2D, 'pool'))


def layer_kind(block):
    """A short name for the kind of layer `block` is."""
    for cls, kind in _KINDS:
        if isinstance(block, cls):
            return kind
    return type(block).__name__.lower()


def leaf_layers(net):
    """The layers of `net` in the order they run, plain Sequentials opened up."""
    plain = (nn.HybridSequential, nn.Sequential)
    if type(net) in plain:
        return [leaf for child in net for leaf in leaf_layers(child)]
    return [net]


def describe_layers(net, input_shape):
    """One `Layer` per leaf layer of `net`; raises ValueError naming the layer that fails."""
    layers, shape = [], tuple(input_shape)
    for number, block in enumerate(leaf_layers(net), 1):
        try:
            shape, param_shapes = infer_block(block, shape)
        except (mx.base.MXNetError, ValueError) as err:
            raise ValueError(f'layer {number} ({layer_kind(block)}) fails on input of shape '
                             f'{shape}: {first_line(err)}') from None
        params = sum(int(np.prod(s)) for s in param_shapes.values())
        layers.append(Layer(layer_kind(block), shape, params))
    return layers


def check_assignment(student, reference, input_shape):
    """Compare `student` with `reference` on `input_shape`; return (ok, message)."""
    expected = describe_layers(reference, input_shape)
    try:
        got = describe_layers(student, input_shape)
    except ValueError as err:
        return CheckResult(False, str(err))
    for number, (want, have) in enumerate(zip(expected, got, strict=False), 1):  # lengths: below
        if want.kind != have.kind:
            return CheckResult(False, f'layer {number}: expected a {want.kind} layer, '
                                      f'got {have.kind}')
        if want.output_shape != have.output_shape:
            return CheckResult(False, f'layer {number} ({want.kind}): expected output '
                                      f'{want.output_shape}, got {have.output_shape}')
        if want.params != have.params:
            return CheckResult(False, f'layer {number} ({want.kind}): expected {want.params:,} '
                                      f'parameters, got {have.params:,}')
    if len(got) < len(expected):
        missing = expected[len(got)]
        return CheckResult(False, f'expected {len(expected)} layers, got {len(got)}: layer '
                                  f'{len(got) + 1} ({missing.kind}, output '
                                  f'{missing.output_shape}) is missing')
    if len(got) > len(expected):
        extra = got[len(expected)]
        return CheckResult(False, f'expected {len(expected)} layers, got {len(got)}: layer '
                                  f'{len(expected) + 1} ({extra.kind}) is extra')
    return CheckResult(True, f'all {len(expected)} layers match: kinds, output shapes and '
                             f'parameter counts')
