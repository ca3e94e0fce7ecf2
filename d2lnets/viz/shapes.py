"""See a network layer by layer: output shapes and parameter counts.

`print_layer_shapes` is the book's loop (D2L section 7.6; 5.5 in the first MXNet
edition)::

    for blk in net:
        X = blk(X)
        print(blk.name, 'output shape:\\t', X.shape)

done by MXNet's symbolic shape inference instead of a forward pass, so it needs
no initialised parameters, allocates nothing (VGG-19 has 144 million), and
reads the same for a hybridized net as for an imperative one. An imperative
`Block` child (the book's from-scratch BatchNorm) has no symbolic form: once
the net is initialised, its shapes come from a forward pass on zeros.
Columns are padded with spaces, so they line up whatever the shapes' lengths.

`multiply_adds` counts the multiply-accumulates of every convolution and
fully-connected layer the same way, from the graph's inferred shapes.
"""
import json
from collections import namedtuple

import mxnet as mx
import numpy as np
from mxnet import autograd, nd
from mxnet.gluon import nn

from .._messages import first_line

LayerInfo = namedtuple('LayerInfo', 'name output_shape params trainable_params')


def infer_block(block, input_shape):
    """Output shape and {parameter name: shape} of `block` on `input_shape`."""
    data = mx.sym.var('data')
    out = block(data)
    arg_shapes, out_shapes, aux_shapes = out.infer_shape(data=tuple(input_shape))
    if out_shapes is None or not out_shapes or out_shapes[0] is None:
        raise ValueError(f'{block.name}: cannot infer the output shape on input {input_shape}')
    shapes = dict(zip(out.list_arguments(), arg_shapes, strict=True))
    shapes.update(zip(out.list_auxiliary_states(), aux_shapes, strict=True))
    shapes.pop('data')
    return tuple(out_shapes[0]), shapes


def run_block(block, input_shape):
    """Output shape and {parameter name: shape} of an initialised imperative
    `block`, by a forward pass on zeros in prediction mode (no state changes)."""
    params = block.collect_params()
    try:
        ctx = next(iter(params.values())).list_ctx()[0] if params else mx.cpu()
        with autograd.predict_mode():
            out = block(nd.zeros(input_shape, ctx=ctx))
    except (RuntimeError, mx.gluon.parameter.DeferredInitializationError):
        raise ValueError(f'{block.name} is an imperative Block, whose shapes cannot be '
                         f'inferred symbolically; initialise the net first (its shapes then '
                         f'come from a forward pass)') from None
    return tuple(out.shape), {p.name: p.shape for p in params.values()}


def _count(shapes, names):
    return sum(int(np.prod(shapes[n])) for n in names)


def _runs_children_in_order(net):
    """A (Hybrid)Sequential whose forward is still the sequential one: not, say,
    HybridConcurrent, which subclasses it to run its children side by side."""
    hybrid, plain = nn.HybridSequential, nn.Sequential
    return ((isinstance(net, hybrid) and type(net).hybrid_forward is hybrid.hybrid_forward)
            or (isinstance(net, plain) and type(net).forward is plain.forward))


def _top_level_blocks(net):
    """The layers of a sequence (see `_runs_children_in_order`), else [net]."""
    return list(net) if _runs_children_in_order(net) else [net]


def layer_table(net, input_shape):
    """One `LayerInfo` per child of `net` on an input of `input_shape` (with batch).

    `params` counts every parameter, moving statistics included; `trainable_params`
    only those with gradients.
    """
    blocks = _top_level_blocks(net)
    rows, shape = [], _checked_shape(input_shape)
    for blk in blocks:
        try:
            if isinstance(blk, mx.gluon.HybridBlock):
                shape, param_shapes = infer_block(blk, shape)
            else:
                shape, param_shapes = run_block(blk, shape)
        except mx.base.MXNetError as err:
            raise ValueError(f'{blk.name} does not accept input of shape {shape}: '
                             f'{first_line(err)}') from None
        trainable = [p.name for p in blk.collect_params().values()
                     if p.grad_req != 'null' and p.name in param_shapes]
        rows.append(LayerInfo(blk.name, shape, _count(param_shapes, param_shapes),
                              _count(param_shapes, trainable)))
    return rows


def _checked_shape(input_shape):
    try:
        shape = tuple(input_shape)
        ok = shape and all(int(d) == d and d > 0 for d in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f'input shape {input_shape!r} is not a tuple of positive whole '
                         f'numbers; give one with the batch, e.g. (1, 1, 28, 28)')
    return tuple(int(d) for d in shape)


def count_parameters(net, input_shape, trainable_only=False):
    """Total parameters of `net` on an input of `input_shape` (with batch)."""
    rows = layer_table(net, input_shape)
    return sum(r.trainable_params if trainable_only else r.params for r in rows)


def print_layer_shapes(net, input_shape, file=None):
    """Print the book's per-layer shape table, with parameters per layer and in
    total, in columns padded with spaces. Returns None, so that a notebook cell
    ending with it shows the table once; `layer_table` gives the rows."""
    rows = layer_table(net, input_shape)
    total = f'{sum(r.params for r in rows):,}'
    name_width = max(len('total'), *(len(r.name) for r in rows))
    shape_width = max(len(str(r.output_shape)) for r in rows)
    count_width = max(len(total), *(len(f'{r.params:,}') for r in rows))
    for r in rows:
        print(f'{r.name:<{name_width}}  output shape: {str(r.output_shape):<{shape_width}}  '
              f'params: {r.params:>{count_width},}', file=file)
    print(f'{"total":<{name_width}}  {"parameters:":<{len("output shape: ") + shape_width}}  '
          f'        {total:>{count_width}}', file=file)


def multiply_adds(net, input_shape):
    """Multiply-accumulate operations of one forward pass on `input_shape` (with
    batch): each convolution's and fully-connected layer's output size times its
    weight's fan-in (channels per group x kernel, or input units). A sequence
    of layers is counted layer after layer, as the book defines it."""
    out = mx.sym.var('data')
    for layer in _top_level_blocks(net):
        out = layer(out)
    internals = out.get_internals()
    arg_shapes, _, _ = out.infer_shape(data=tuple(input_shape))
    _, internal_shapes, _ = internals.infer_shape(data=tuple(input_shape))
    weights = dict(zip(out.list_arguments(), arg_shapes, strict=True))
    outputs = dict(zip(internals.list_outputs(), internal_shapes, strict=True))
    nodes = json.loads(out.tojson())['nodes']
    total = 0
    for node in nodes:
        if node['op'] in ('Convolution', 'FullyConnected'):
            weight = weights[nodes[node['inputs'][1][0]]['name']]
            total += int(np.prod(outputs[node['name'] + '_output'])) * int(np.prod(weight[1:]))
    return total
