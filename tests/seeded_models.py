"""Seeded networks and inputs for output tests (tests/test_model_outputs.py)
and the stored expectations that scripts/make_expectations.py writes.

Parameters are not drawn by MXNet's initialisers but set in creation order
from NumPy's seeded generator, so that the same values can be put into any
network with the same parameter shapes in the same order (MXNet's model zoo),
and so that every output moves with the input and with every layer:

- weights: normal, scaled by gain/sqrt(fan-in), the gain from `weight_gain`
  (sqrt(2) for ReLU networks, He's; 1 for ReLU networks with batch norm; 4
  for the sigmoid LeNets, whose units would otherwise sit in their linear
  middle and give every input almost the same output);
- biases and BatchNorm's beta: normal, 0.1;
- BatchNorm's gamma: uniform in [0.5, 1.5];
- BatchNorm's moving mean: normal, 0.1; moving variance: uniform in
  [0.05, 1], so that eval-mode batch norm is far from the identity and its
  epsilon (1e-5) shows in the output at the tolerances used.
"""
import os

import d2lnets  # noqa: F401  (before MXNet)
import numpy as np
from mxnet import init, nd

from d2lnets.models import get_model

EXPECTATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'expectations')
BATCH = 2
# registry name -> input (C, H, W): the smallest that the network takes
# without changing it (global pooling lets ImageNet ResNets, DenseNets and
# SqueezeNets take 64x64; dense layers tie AlexNet and VGG to 224x224).
INPUTS = {
    'lenet': (1, 28, 28), 'lenet_first_edition': (1, 28, 28), 'lenet_bn': (1, 28, 28),
    'lenet_bn_scratch': (1, 28, 28), 'lenet_ln': (1, 28, 28),
    'alexnet_book': (1, 224, 224), 'alexnet_imagenet': (3, 224, 224),
    'nin': (1, 96, 96), 'googlenet': (1, 96, 96), 'googlenet_cifar10': (3, 32, 32),
    'resnet18_book': (1, 64, 64), 'densenet_book': (1, 64, 64),
    'vgg11_fashion': (1, 224, 224),
}
for _name in ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnet50_v1',
              'resnet101_v1', 'resnet152_v1', 'densenet121', 'densenet161', 'densenet169',
              'densenet201', 'squeezenet1_0', 'squeezenet1_1', 'squeezenet1_0_simple_bypass',
              'squeezenet1_0_complex_bypass'):
    INPUTS[_name] = (3, 64, 64)
for _name in ('vgg11', 'vgg11_bn', 'vgg11_lrn', 'vgg13', 'vgg13_bn', 'vgg16', 'vgg16_1x1',
              'vgg16_bn', 'vgg19', 'vgg19_bn'):
    INPUTS[_name] = (3, 224, 224)
# Expensive on two cores (large weights or 224x224 VGGs): checked in the slow run.
SLOW = {'vgg11_lrn', 'vgg13', 'vgg13_bn', 'vgg16', 'vgg16_1x1', 'vgg16_bn', 'vgg19', 'vgg19_bn',
        'resnet101', 'resnet152', 'resnet101_v1', 'resnet152_v1', 'densenet161', 'densenet169',
        'densenet201'}


def seeded_input(shape, seed=1):
    """A float32 batch of `shape` in [-1, 1]: a coarse 4x4 random pattern per
    example and channel, stretched over the image, plus fine noise. (Noise
    alone would average out in global pooling and give every example almost
    the same output.)"""
    rng = np.random.default_rng(seed)
    n, c, h, w = shape
    coarse = rng.uniform(-1, 1, size=(n, c, 4, 4))
    coarse = coarse[:, :, (np.arange(h) * 4) // h][:, :, :, (np.arange(w) * 4) // w]
    fine = rng.uniform(-1, 1, size=shape)
    return nd.array((0.7 * coarse + 0.3 * fine).astype(np.float32))


def weight_gain(name):
    """The weights' scale times sqrt(fan-in) for the registry's model `name`."""
    if name.startswith('lenet'):
        return 4.0
    if name.startswith(('resnet', 'densenet')) or name.endswith('_bn'):
        return 1.0
    return 2 ** 0.5


def parameter_values(shapes_and_names, seed=0, gain=1.0, var_range=(0.05, 1.0)):
    """One float32 array per (name, shape), in order, as the module docstring says."""
    rng = np.random.default_rng(seed)
    values = []
    for name, shape in shapes_and_names:
        if name.endswith('running_var') or name.endswith('moving_var'):
            value = rng.uniform(*var_range, size=shape).astype(np.float32)
        elif name.endswith('gamma'):
            value = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        elif name.endswith('weight') and len(shape) > 1:
            value = rng.standard_normal(size=shape, dtype=np.float32)
            value *= np.float32(gain / np.sqrt(np.prod(shape[1:])))
        else:  # bias, beta, running or moving mean
            value = np.float32(0.1) * rng.standard_normal(size=shape, dtype=np.float32)
        values.append(value)
    return values


def seed_parameters(net, input_shape, seed=0, gain=1.0, var_range=(0.05, 1.0)):
    """Run `net` once on zeros of `input_shape` (so every shape is known), then
    set its parameters, in creation order, to `parameter_values`."""
    net.initialize(init.Zero(), force_reinit=True)
    net(nd.zeros((1,) + tuple(input_shape[1:])))
    params = list(net.collect_params().values())
    for param, value in zip(params, parameter_values([(p.name, p.shape) for p in params], seed,
                                                            gain, var_range),
                            strict=True):
        param.set_data(nd.array(value))
    return net


def seeded_model(name, input_shape=None, seed=0, **kwargs):
    """The registry's `name` with seeded parameters, for a batch of `INPUTS[name]`."""
    shape = input_shape or (BATCH,) + INPUTS[name]
    return seed_parameters(get_model(name, **kwargs), shape, seed, weight_gain(name))


def model_output(name):
    """(seeded network's output on the seeded input, the input): float32 NumPy."""
    X = seeded_input((BATCH,) + INPUTS[name])
    return seeded_model(name)(X).asnumpy(), X.asnumpy()


def expectation_path(name):
    return os.path.join(EXPECTATIONS, f'{name}.npy')
