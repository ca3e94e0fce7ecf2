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
- ``returned``: what the block's forward returned: ``['array', 1]``, ``['tuple', n]``,
  ``['list', n]`` or ``['other', type name]``; ``outputs``: the arrays it returned,
  named (``[['output', array]]`` for one array, ``'output 1'``, ... for several).
- ``weights``: the parameters' values, in the order the layers run, and
  ``layout``: how many of them each layer has.
- ``param_problem``: None, or the block's layers and their parameters' shapes
  (``[[kind, [shape, ...]], ...]``) when the reference's weights do not fit
  them; `fit_problem` puts that in words.

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
    return recorder, out


def returned(out):
    """(``returned``, ``outputs``) of an observation for what a forward returned."""
    if isinstance(out, nd.NDArray):
        return ['array', 1], [['output', out.asnumpy()]]
    if isinstance(out, (list, tuple)) and all(isinstance(o, nd.NDArray) for o in out):
        return ([type(out).__name__, len(out)],
                [[f'output {number}', o.asnumpy()] for number, o in enumerate(out, 1)])
    return ['other', type(out).__name__], []


def returned_words(shape):
    """'one array', 'a tuple of 2 arrays', 'an object of type str' for a ``returned`` field."""
    structure, detail = shape
    if structure == 'array':
        return 'one array'
    if structure in ('tuple', 'list'):
        return f'a {structure} of {detail} array{"s" if detail != 1 else ""}'
    return f'an object of type {detail}'


def _params_in_running_order(order):
    return list(dict.fromkeys(p for layer in order for p in layer.params.values()))


def _fits(param, weight):
    return _shape_fits(tuple(param.shape), weight.shape)


def _shapes(shapes):
    return ', '.join('x'.join(map(str, shape)) for shape in shapes) or 'none'


def layer_params(order):
    """[[kind, [shape, ...]], ...] for the layers in `order`: what `fit_problem` needs."""
    return [[layer_kind(layer), [list(p.shape) for p in layer.params.values()]]
            for layer in order]


def fit_problem(layers, weight_shapes, layout):
    """Words for the first layer of `layers` (see `layer_params`, in running
    order) whose parameters do not fit the reference's `weight_shapes`;
    `layout` is the reference's parameter count per layer."""
    weight_shapes = [tuple(shape) for shape in weight_shapes]
    start = 0
    for number, (kind, shapes) in enumerate(layers, 1):
        mine = [tuple(shape) for shape in shapes]
        count = layout[number - 1] if number <= len(layout) else 0
        theirs, start = weight_shapes[start:start + count], start + count
        if len(mine) != len(theirs) or not all(map(_shape_fits, mine, theirs)):
            hint = ''
            if len(mine) < len(theirs) and kind in ('convolution', 'dense layer'):
                hint = ': did you turn its bias off (use_bias=False)?'
            elif mine and theirs and mine[0][:1] != theirs[0][:1]:
                hint = ': check its number of channels'
            return (f'layer {number} ({kind}): your parameters have shapes '
                    f'{_shapes(mine)}, expected {_shapes(theirs)}{hint}')
    return (f'your layers have other parameters than the reference\'s: expected '
            f'{_shapes(weight_shapes)}')


def _shape_fits(mine, theirs):
    return mine == theirs or (
        int(np.prod(mine)) == int(np.prod(theirs))
        and [d for d in mine if d != 1] == [d for d in theirs if d != 1])


def load_weights(block, order, weights):
    """Give `block` the reference's `weights`, matched in the order its layers
    run, else in the order it registered them; return whether they fit."""
    running = _params_in_running_order(order)
    registered = list(block.collect_params().values())
    for params in (running, registered):
        if len(params) == len(weights) and all(map(_fits, params, weights)):
            for param, weight in zip(params, weights):
                param.set_data(nd.array(weight.reshape(param.shape)))
            return True
    return False


def observe(build, args, input_shape, kind, reference=None):
    """Build `build(*args)` and observe it on the seeded input of
    `input_shape` with the `reference` observation's weights; `kind` is
    'block' or 'batch_norm'."""
    observer = {'block': observe_block, 'batch_norm': observe_batch_norm}[kind]
    return observer(build(*args), seeded_input(input_shape), reference)


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
    fits = load_weights(block, order, reference['weights'])
    observation = {'weights': reference['weights'], 'layout': layout,
                   'param_problem': None if fits else layer_params(order),
                   'steps': recorder.steps, 'returned': ['array', 1], 'outputs': []}
    if fits:
        recorder, out = _run(block, x)
        shape, outputs = returned(out)
        observation.update(steps=recorder.steps, returned=shape, outputs=outputs)
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
        return {'weights': weights, 'layout': [], 'steps': [], 'returned': ['array', 1],
                'outputs': [], 'param_problem': [['batch norm', [list(p.shape) for p in params]]]}
    for param, weight in zip(params, weights):
        param.set_data(nd.array(weight.reshape(param.shape)))
    with autograd.record():
        training = block(nd.array(x))
    shape, _ = returned(training)
    if shape != ['array', 1]:
        return {'weights': weights, 'layout': [], 'steps': [], 'returned': shape,
                'outputs': [], 'param_problem': None}
    training.backward()  # nn.BatchNorm updates its moving statistics here
    moving = [params[2].data().asnumpy().reshape(-1), params[3].data().asnumpy().reshape(-1)]
    prediction = block(nd.array(x))
    shape, _ = returned(prediction)
    outputs = [['output in training', training.asnumpy()],
               ['moving mean after a training step', moving[0]],
               ['moving variance after a training step', moving[1]]]
    if shape == ['array', 1]:
        outputs.append(['output in prediction', prediction.asnumpy()])
    return {'weights': weights, 'layout': [], 'param_problem': None, 'steps': [],
            'returned': shape, 'outputs': outputs}
