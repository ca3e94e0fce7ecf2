"""Run a block on a seeded input and record what it computes, layer by layer.

An observation is a plain dict (numbers, strings and NumPy arrays), so it can
cross from the process that runs a student's code to the one that judges it:

- ``steps``: one per layer in the order the layers run -- a layer is a block
  with parameters of its own or without children; other blocks (Sequentials,
  custom blocks) are opened up, whatever their class. Each step has the
  layer's ``kind`` ('convolution', 'max pooling', ...), its ``activation``
  (built in, as ``Conv2D(activation='relu')``, or a separate activation
  block that runs right after it: the two are the same step), ``detail``
  (kernel, padding, strides), output ``shape`` and ``values``. Dropout and
  the identity (a path of a concatenation that passes its input on, as the
  library's DenseBlock has) are left out: they compute nothing here.
- ``outputs``: named results, ``[['output', array]]`` for a block.
- ``weights``: the parameters' values, in the order the layers run, and
  ``layout``: how many of them each layer has.
- ``param_problem``: why the reference's weights do not fit, or None.

The reference is observed with seeded random weights (`reference_weights`);
the student's block is then given those same weights, in the order its layers
run (or, failing that, the order it registered them), so equal blocks give
equal numbers.
"""
import mxnet as mx
import numpy as np
from mxnet import autograd, nd
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import Identity

SEED = 0
_KINDS = ((nn.Conv2D, 'convolution'), (nn.Dense, 'dense layer'), (nn.BatchNorm, 'batch norm'),
          (nn.MaxPool2D, 'max pooling'), (nn.AvgPool2D, 'average pooling'),
          (nn.GlobalMaxPool2D, 'global max pooling'),
          (nn.GlobalAvgPool2D, 'global average pooling'), (nn.Flatten, 'flatten'))
_ACTIVATIONS = {nn.LeakyReLU: 'leaky relu', nn.PReLU: 'prelu', nn.ELU: 'elu', nn.SELU: 'selu',
                nn.Swish: 'swish', nn.GELU: 'gelu'}


def seeded_input(shape, seed=SEED):
    """A standard-normal float32 array of `shape`, the same for every run."""
    return np.random.RandomState(seed).normal(size=shape).astype(np.float32)


def reference_weights(names_and_shapes, seed=SEED):
    """Seeded weights for parameters (name, shape): variances positive, scales
    near 1, other tensors uniform with unit-variance-preserving range."""
    rng = np.random.RandomState(seed + 1)
    weights = []
    for name, shape in names_and_shapes:
        if name.endswith(('running_var', 'moving_var')):
            value = rng.uniform(0.5, 2.0, size=shape)
        elif name.endswith('gamma'):
            value = rng.uniform(0.5, 1.5, size=shape)
        elif len(shape) > 1:
            bound = np.sqrt(3.0 / int(np.prod(shape[1:])))
            value = rng.uniform(-bound, bound, size=shape)
        else:
            value = rng.uniform(-0.5, 0.5, size=shape)
        weights.append(value.astype(np.float32))
    return weights


def is_activation(block):
    """Whether `block` is an activation layer (no parameters of a shape that matters)."""
    return isinstance(block, (nn.Activation, *_ACTIVATIONS))


def activation_name(block):
    """'relu', 'sigmoid', 'leaky relu', ... for an activation layer."""
    if isinstance(block, nn.Activation):
        return block._act_type
    return _ACTIVATIONS[type(block)]


def layer_kind(block):
    """'convolution', 'max pooling', ...; for other layers, their class name."""
    for cls, kind in _KINDS:
        if isinstance(block, cls):
            return kind
    return f'{type(block).__name__} layer'


def layers(block):
    """The layers inside `block`: blocks with parameters of their own or no children."""
    if list(block.params.keys()) or not block._children:
        return [block]
    return [leaf for child in block._children.values() for leaf in layers(child)]


def _detail(layer):
    kwargs = getattr(layer, '_kwargs', {})
    return {key: list(kwargs[key]) for key in ('kernel', 'pad', 'stride')
            if isinstance(kwargs.get(key), tuple)}


class _Recorder:
    """Forward hooks on every layer of a block, recording one step per layer."""

    def __init__(self, block):
        self.steps, self.order = [], []
        self.handles = [layer.register_forward_hook(self._record)
                        for layer in dict.fromkeys(layers(block))]

    def _record(self, layer, inputs, output):
        out = output[0] if isinstance(output, (list, tuple)) else output
        if isinstance(layer, (nn.Dropout, Identity)) or not isinstance(out, nd.NDArray):
            return
        if is_activation(layer) and self.steps:
            self.steps[-1].update(activation=activation_name(layer), values=out.asnumpy())
            return
        builtin = getattr(layer, 'act', None)
        self.order.append(layer)
        self.steps.append({'kind': layer_kind(layer), 'detail': _detail(layer),
                           'activation': activation_name(builtin) if builtin else None,
                           'shape': list(out.shape), 'values': out.asnumpy()})

    def close(self):
        for handle in self.handles:
            handle.detach()


def _run(block, x):
    recorder = _Recorder(block)
    try:
        out = block(nd.array(x))
    finally:
        recorder.close()
    out = out[0] if isinstance(out, (list, tuple)) else out
    return recorder, out


def _params_in_running_order(order):
    return list(dict.fromkeys(p for layer in order for p in layer.params.values()))


def _fits(param, weight):
    return tuple(param.shape) == weight.shape or (
        int(np.prod(param.shape)) == weight.size
        and [d for d in param.shape if d != 1] == [d for d in weight.shape if d != 1])


def _shapes(shapes):
    return ', '.join('x'.join(map(str, shape)) for shape in shapes) or 'none'


def _fit_problem(order, weights, layout):
    """Words for the first layer (in running order) whose parameters do not
    fit the reference's; `layout` is the reference's parameter count per layer."""
    start = 0
    for number, layer in enumerate(order, 1):
        mine = list(layer.params.values())
        count = layout[number - 1] if number <= len(layout) else 0
        theirs, start = weights[start:start + count], start + count
        if len(mine) != len(theirs) or not all(map(_fits, mine, theirs)):
            hint = ''
            if len(mine) < len(theirs) and isinstance(layer, (nn.Conv2D, nn.Dense)):
                hint = ': did you turn its bias off (use_bias=False)?'
            elif mine and theirs and mine[0].shape[0] != theirs[0].shape[0]:
                hint = ': check its number of channels'
            return (f'layer {number} ({layer_kind(layer)}): your parameters have shapes '
                    f'{_shapes(p.shape for p in mine)}, expected '
                    f'{_shapes(w.shape for w in theirs)}{hint}')
    return (f'your layers have other parameters than the reference\'s: expected '
            f'{_shapes(w.shape for w in weights)}')


def load_weights(block, order, weights, layout):
    """Give `block` the reference's `weights`, matched in the order its layers
    run, else in the order it registered them; return None or the problem."""
    running = _params_in_running_order(order)
    registered = list(block.collect_params().values())
    for params in (running, registered):
        if len(params) == len(weights) and all(map(_fits, params, weights)):
            for param, weight in zip(params, weights):
                param.set_data(nd.array(weight.reshape(param.shape)))
            return None
    return _fit_problem(order, weights, layout)


def observe_block(block, x, reference=None):
    """Observe `block` (a Block or HybridBlock) on input `x` in prediction mode,
    with the `reference` observation's weights (None: seeded ones, as for a
    reference). `layout` records the parameter count of each layer."""
    block.hybridize(False)
    block.collect_params().initialize(mx.init.Uniform(0.1), force_reinit=True)
    recorder, _ = _run(block, x)   # resolves deferred shapes and the running order
    order = recorder.order
    layout = [len(list(layer.params.values())) for layer in order]
    if reference is None:
        running = _params_in_running_order(order)
        reference = {'weights': reference_weights([(p.name, p.shape) for p in running]),
                     'layout': layout}
    problem = load_weights(block, order, reference['weights'], reference['layout'])
    observation = {'weights': reference['weights'], 'layout': layout, 'param_problem': problem,
                   'steps': recorder.steps, 'outputs': []}
    if problem is None:
        recorder, out = _run(block, x)
        observation.update(steps=recorder.steps, outputs=[['output', out.asnumpy()]])
    return observation


def observe_batch_norm(block, x, reference=None):
    """Observe a batch normalisation layer: its output in training, its moving
    mean and variance after that step, and its output in prediction (with the
    `reference` observation's weights, or seeded ones)."""
    block.collect_params().initialize(mx.init.Uniform(0.1), force_reinit=True)
    block(nd.array(x))
    params = list(block.collect_params().values())
    weights = (reference or {}).get('weights') or reference_weights(
        [(p.name, p.shape) for p in params])
    if len(params) != len(weights) or not all(map(_fits, params, weights)):
        return {'weights': weights, 'layout': [], 'steps': [], 'outputs': [],
                'param_problem': f'expected 4 parameters (gamma, beta, moving mean, moving '
                                 f'variance) of {weights[0].size} numbers each, got '
                                 f'{_shapes(params)}'}
    for param, weight in zip(params, weights):
        param.set_data(nd.array(weight.reshape(param.shape)))
    with autograd.record():
        training = block(nd.array(x))
    training.backward()  # nn.BatchNorm updates its moving statistics here
    moving = [params[2].data().asnumpy().reshape(-1), params[3].data().asnumpy().reshape(-1)]
    prediction = block(nd.array(x))
    return {'weights': weights, 'layout': [], 'param_problem': None, 'steps': [],
            'outputs': [['output in training', training.asnumpy()],
                        ['moving mean after a training step', moving[0]],
                        ['moving variance after a training step', moving[1]],
                        ['output in prediction', prediction.asnumpy()]]}
