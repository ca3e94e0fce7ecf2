"""Run a block on a seeded input and record what it computes, layer by layer.

An observation is a plain dict (numbers, strings and NumPy arrays), so it can
cross from the process that runs a student's code to the one that judges it:

- ``steps``: one per layer in the order the layers run -- a layer is a block
  with parameters of its own or without children; other blocks (Sequentials,
  custom blocks) are opened up, whatever their class. Each step has the
  layer's ``kind`` ('convolution', 'max pooling', ...), its ``activation``
  (built in, as ``Conv2D(activation='relu')``, or a separate activation
  block that runs right after it: the two are the same step), ``detail``
  (kernel, padding, strides), output ``shape`` and ``values``. Dropout is
  left out (it does nothing outside training).
- ``outputs``: named results, ``[['output', array]]`` for a block.
- ``weights``: the parameters' values, in the order the layers run.
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
    return isinstance(block, (nn.Activation, *_ACTIVATIONS))


def activation_name(block):
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
        if isinstance(layer, nn.Dropout) or not isinstance(out, nd.NDArray):
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


def _shapes(params):
    return ', '.join('x'.join(map(str, p.shape)) for p in params) or 'none'


def _fit_problem(running, weights, order):
    """Words for the first parameter (in running order) that does not fit."""
    owner = {p: number for number, layer in enumerate(order, 1) for p in layer.params.values()}
    for param, weight in zip(running, weights):
        if not _fits(param, weight):
            number = owner[param]
            return (f'layer {number} ({layer_kind(order[number - 1])}): a parameter has shape '
                    f'{"x".join(map(str, param.shape))}, expected '
                    f'{"x".join(map(str, weight.shape))}')
    if len(running) != len(weights):
        return (f'your block has {len(running)} parameter tensors ({_shapes(running)}), '
                f'expected {len(weights)}: did you leave out a bias or a layer, or add one?')
    return None


def load_weights(block, order, weights):
    """Give `block` the reference's `weights`, matched in the order its layers
    run, else in the order it registered them; return None or the problem."""
    running = _params_in_running_order(order)
    registered = list(block.collect_params().values())
    for params in (running, registered):
        if len(params) == len(weights) and all(map(_fits, params, weights)):
            for param, weight in zip(params, weights):
                param.set_data(nd.array(weight.reshape(param.shape)))
            return None
    return _fit_problem(running, weights, order)


def observe_block(block, x, weights=None):
    """Observe `block` (a Block or HybridBlock) on input `x` in prediction mode,
    with `weights` (None: seeded ones, as for a reference)."""
    block.hybridize(False)
    block.collect_params().initialize(mx.init.Uniform(0.1), force_reinit=True)
    recorder, _ = _run(block, x)   # resolves deferred shapes and the running order
    order = recorder.order
    if weights is None:
        running = _params_in_running_order(order)
        weights = reference_weights([(p.name, p.shape) for p in running])
    problem = load_weights(block, order, weights)
    observation = {'weights': weights, 'param_problem': problem, 'steps': recorder.steps,
                   'outputs': []}
    if problem is None:
        recorder, out = _run(block, x)
        observation.update(steps=recorder.steps, outputs=[['output', out.asnumpy()]])
    return observation


def observe_batch_norm(block, x, weights=None):
    """Observe a batch normalisation layer: its output in training, its moving
    mean and variance after that step, and its output in prediction."""
    block.collect_params().initialize(mx.init.Uniform(0.1), force_reinit=True)
    block(nd.array(x))
    params = list(block.collect_params().values())
    if weights is None:
        weights = reference_weights([(p.name, p.shape) for p in params])
    if len(params) != len(weights) or not all(map(_fits, params, weights)):
        return {'weights': weights, 'steps': [], 'outputs': [],
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
    return {'weights': weights, 'param_problem': None, 'steps': [],
            'outputs': [['output in training', training.asnumpy()],
                        ['moving mean after a training step', moving[0]],
                        ['moving variance after a training step', moving[1]],
                        ['output in prediction', prediction.asnumpy()]]}
