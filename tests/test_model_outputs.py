"""What every model computes, not only its shapes: outputs of seeded networks
on seeded inputs (tests/seeded_models.py) compared with

- stored expectations (tests/expectations/, written by
  scripts/make_expectations.py), for every registered model;
- MXNet's model zoo, with the same parameters put in by name, where the zoo
  builds the same network (AlexNet, VGG, ResNet-18/34 and 50/101/152 v1,
  DenseNet, SqueezeNet);
- the d2l package's own LeNet and Residual, in a subprocess (d2l's MXNet
  code runs in NumPy mode, which would switch this process's nd code off);
- float64 NumPy versions of the blocks (tests/numpy_reference.py).

A wrong activation, pooling type, padding, stride placement, epsilon or
concatenation order changes these outputs far beyond the tolerances.
"""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

import numpy_reference as ref
import seeded_models
from seeded_models import (INPUTS, SLOW, expectation_path, seed_parameters, seeded_input,
                           seeded_model, weight_gain)
from d2lnets.models import get_model, list_models
from d2lnets.models.batchnorm import batch_norm
from d2lnets.models.densenet import DenseBlock
from d2lnets.models.googlenet import Inception
from d2lnets.models.resnet import Bottleneck, Residual
from d2lnets.models.squeezenet import Fire
from d2lnets.training.finetune import ParamsMismatchError, load_by_order, replace_output


def close(actual, expected, rtol=1e-4):
    """Equal within `rtol` of the largest |expected| (outputs of deep random
    networks range over many orders of magnitude)."""
    np.testing.assert_allclose(actual, expected, rtol=rtol,
                               atol=rtol * float(np.abs(expected).max()))


def slow_if(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


# ---------------------------------------------------------------- stored expectations

def test_an_input_and_an_expectation_for_every_model():
    assert sorted(INPUTS) == list_models()
    stored = {f[:-4] for f in os.listdir(seeded_models.EXPECTATIONS) if f.endswith('.npy')}
    assert stored == set(list_models())


@pytest.mark.parametrize('name', slow_if(list_models()))
def test_output_equals_stored_expectation(name):
    expected = np.load(expectation_path(name))
    output, _ = seeded_models.model_output(name)
    assert output.shape == expected.shape
    close(output, expected)
    # the comparison is not empty: the two examples of the batch give different outputs
    assert np.abs(expected[0] - expected[1]).max() > 1e-2 * np.abs(expected).max()


# ---------------------------------------------------------------- MXNet's model zoo

ZOO = {'alexnet_imagenet': 'alexnet', 'vgg11': 'vgg11', 'vgg13': 'vgg13', 'vgg16': 'vgg16',
       'vgg19': 'vgg19', 'vgg11_bn': 'vgg11_bn', 'vgg13_bn': 'vgg13_bn', 'vgg16_bn': 'vgg16_bn',
       'vgg19_bn': 'vgg19_bn', 'resnet18': 'resnet18_v1', 'resnet34': 'resnet34_v1',
       'resnet50_v1': 'resnet50_v1', 'resnet101_v1': 'resnet101_v1',
       'resnet152_v1': 'resnet152_v1', 'densenet121': 'densenet121',
       'densenet161': 'densenet161', 'densenet169': 'densenet169',
       'densenet201': 'densenet201', 'squeezenet1_0': 'squeezenet1.0',
       'squeezenet1_1': 'squeezenet1.1'}
ZOO_FAST = {'resnet18', 'resnet50_v1', 'densenet121', 'squeezenet1_0', 'squeezenet1_1'}
IMAGENET = (1, 3, 224, 224)  # the zoo's DenseNet and SqueezeNet pool 7x7 and 13x13 maps


def seeded_zoo(zoo_name, shape=IMAGENET, gain=1.0):
    return seed_parameters(mx.gluon.model_zoo.vision.get_model(zoo_name), shape, 3, gain)


def copy_by_name(source, target, shape):
    """Initialise `target`, then give it `source`'s parameters under the same
    saved names (as `load_parameters` pairs them)."""
    target.initialize(mx.init.Zero())
    target(nd.zeros(shape))
    theirs, ours = source._collect_params_with_prefix(), target._collect_params_with_prefix()
    assert list(ours) == list(theirs)
    for key, param in ours.items():
        param.set_data(theirs[key].data())
    return target


@pytest.mark.parametrize('name', [n if n in ZOO_FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(ZOO)])
def test_same_output_as_model_zoo(name):
    zoo = seeded_zoo(ZOO[name], gain=weight_gain(name))
    ours = copy_by_name(zoo, get_model(name), IMAGENET)
    X = seeded_input(IMAGENET)
    expected = zoo(X).asnumpy()
    assert np.abs(expected).max() > 0 and np.unique(expected.round(6)).size > 10
    close(ours(X).asnumpy(), expected, rtol=1e-5)


def test_model_zoo_file_loads_by_name(tmp_path):
    shape = (2, 3, 64, 64)
    zoo = seeded_zoo('resnet18_v1', shape)
    path = str(tmp_path / 'resnet18_v1.params')
    zoo.save_parameters(path)
    ours = get_model('resnet18')
    ours.load_parameters(path)
    np.testing.assert_array_equal(ours(seeded_input(shape)).asnumpy(),
                                  zoo(seeded_input(shape)).asnumpy())
    assert all(key.startswith('resnet18_output_') for key in ours.output.collect_params())
    stages = [key.split('_')[1] for key in ours.features.collect_params() if '_stage' in key]
    assert sorted(set(stages)) == ['stage1', 'stage2', 'stage3', 'stage4']


def test_output_layer_replaced_in_place_with_its_own_learning_rate():
    net = seeded_model('resnet18', (1, 3, 64, 64))
    features = net.features(seeded_input((1, 3, 64, 64))).asnumpy()
    net = replace_output(net, 5)
    net.output.collect_params().setattr('lr_mult', 10)
    assert net(seeded_input((1, 3, 64, 64))).shape == (1, 5)
    np.testing.assert_array_equal(net.features(seeded_input((1, 3, 64, 64))).asnumpy(), features)
    mults = {k: p.lr_mult for k, p in net.collect_params().items()}
    assert {k for k, m in mults.items() if m == 10} == {'resnet18_output_weight',
                                                        'resnet18_output_bias'}


def test_resnet50_layouts_differ_and_zoo_v1_files_do_not_load_into_v1_5(tmp_path):
    """The zoo's ResNet-50 v1 strides the first 1x1 convolution of a block and
    gives its first and last 1x1 convolutions biases; `resnet50` (v1.5) strides
    the 3x3 and has no biases: a v1 file loads into `resnet50_v1` only."""
    shape = (1, 3, 64, 64)
    zoo = seeded_zoo('resnet50_v1', shape)
    path = str(tmp_path / 'resnet50_v1.params')
    zoo.save_parameters(path)
    v1 = get_model('resnet50_v1')
    v1.load_parameters(path)
    np.testing.assert_array_equal(v1(seeded_input(shape)).asnumpy(),
                                  zoo(seeded_input(shape)).asnumpy())
    v1_5 = seeded_model('resnet50', shape)
    with pytest.raises(ValueError, match='features.4.0.body.0.bias'):
        v1_5.load_parameters(path)
    with pytest.raises(ParamsMismatchError, match='another architecture'):
        load_by_order(v1_5, path)
    stage2 = v1.features[5][0].body
    assert (stage2[0]._kwargs['stride'], stage2[3]._kwargs['stride']) == ((2, 2), (1, 1))
    stage2 = v1_5.features[5][0].body
    assert (stage2[0]._kwargs['stride'], stage2[3]._kwargs['stride']) == ((1, 1), (2, 2))


# ---------------------------------------------------------------- the d2l package

D2L_SCRIPT = r'''
import json, sys
import numpy as np
from d2l import mxnet as d2l
from mxnet import np as mnp, npx
npx.set_np()
params = np.load('params.npz')
inputs = np.load('inputs.npz')
out = {}
for name, net in (('lenet', d2l.LeNet().net), ('residual', d2l.Residual(8, True, 2)),
                  ('residual_same', d2l.Residual(3))):
    if name != 'lenet':
        net.initialize()
    net(mnp.array(inputs[name]))
    for key, param in net._collect_params_with_prefix().items():
        param.set_data(mnp.array(params[name + '/' + key]))
    out[name] = net(mnp.array(inputs[name])).asnumpy().tolist()
json.dump(out, open('out.json', 'w'))
'''
# our block's saved name -> d2l's Residual's
D2L_RESIDUAL = {'body.0': 'conv1', 'body.1': 'bn1', 'body.3': 'conv2', 'body.4': 'bn2',
                'downsample.0': 'conv3'}


def test_same_output_as_d2l_lenet_and_residual(tmp_path):
    ours = {'lenet': seeded_model('lenet', (2, 1, 28, 28)),
            'residual': seed_parameters(Residual(8, True, 2), (2, 3, 6, 6)),
            'residual_same': seed_parameters(Residual(3), (2, 3, 6, 6))}
    inputs = {'lenet': seeded_input((2, 1, 28, 28)), 'residual': seeded_input((2, 3, 6, 6)),
              'residual_same': seeded_input((2, 3, 6, 6), seed=2)}
    params = {}
    for name, net in ours.items():
        for key, param in net._collect_params_with_prefix().items():
            layer, attr = key.rsplit('.', 1)
            theirs = key if name == 'lenet' else D2L_RESIDUAL[layer] + '.' + attr
            params[f'{name}/{theirs}'] = param.data().asnumpy()
    np.savez(tmp_path / 'params.npz', **params)
    np.savez(tmp_path / 'inputs.npz', **{k: v.asnumpy() for k, v in inputs.items()})
    (tmp_path / 'run.py').write_text(D2L_SCRIPT)
    done = subprocess.run([sys.executable, 'run.py'], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads((tmp_path / 'out.json').read_text())
    for name, net in ours.items():
        expected = np.array(theirs[name], dtype=np.float32)
        assert np.abs(expected).max() > 0
        close(net(inputs[name]).asnumpy(), expected, rtol=1e-5)


# ---------------------------------------------------------------- float64 NumPy references

# Moving variances near batch norm's epsilon (1e-5), so that a wrong epsilon shows.
TINY_VAR = (1e-6, 1e-4)


def arrays(block):
    return {k: p.data().asnumpy().astype(np.float64)
            for k, p in block._collect_params_with_prefix().items()}


def bn(x, p, prefix, eps=1e-5):
    """`ref.batch_norm` with the parameters of Gluon's BatchNorm or the book's
    from-scratch one (moving_mean, moving_var, shaped (1, C, ...))."""
    mean = p.get(prefix + 'running_mean', p.get(prefix + 'moving_mean'))
    var = p.get(prefix + 'running_var', p.get(prefix + 'moving_var'))
    return ref.batch_norm(x, p[prefix + 'gamma'].ravel(), p[prefix + 'beta'].ravel(),
                          mean.ravel(), var.ravel(), eps)


def test_lenet_against_numpy():
    """Both editions: sigmoid everywhere; later: padding 2 and average pooling;
    first: no padding and max pooling."""
    X = seeded_input((2, 1, 28, 28))
    x = X.asnumpy().astype(np.float64)
    for name, padding, kind in (('lenet', 2, 'avg'), ('lenet_first_edition', 0, 'max')):
        net = seeded_model(name, (2, 1, 28, 28))
        p = arrays(net)
        y = ref.sigmoid(ref.conv2d(x, p['0.weight'], p['0.bias'], padding=padding))
        y = ref.pool2d(y, 2, 2, kind=kind)
        y = ref.sigmoid(ref.conv2d(y, p['2.weight'], p['2.bias']))
        y = ref.pool2d(y, 2, 2, kind=kind)
        y = ref.sigmoid(ref.dense(y, p['4.weight'], p['4.bias']))
        y = ref.sigmoid(ref.dense(y, p['5.weight'], p['5.bias']))
        y = ref.dense(y, p['6.weight'], p['6.bias'])
        close(net(X).asnumpy(), y, rtol=1e-5)


@pytest.mark.parametrize('use_1x1conv, strides', [(False, 1), (True, 2)])
def test_book_residual_against_numpy(use_1x1conv, strides):
    """relu(BN(conv(relu(BN(conv(X))))) + shortcut(X)), biased convolutions."""
    channels = 4 if use_1x1conv else 3
    block = seed_parameters(Residual(channels, use_1x1conv, strides), (2, 3, 7, 7),
                            var_range=TINY_VAR)
    X = seeded_input((2, 3, 7, 7))
    x, p = X.asnumpy().astype(np.float64), arrays(block)
    y = ref.relu(bn(ref.conv2d(x, p['body.0.weight'], p['body.0.bias'], strides, 1), p,
                    'body.1.'))
    y = bn(ref.conv2d(y, p['body.3.weight'], p['body.3.bias'], 1, 1), p, 'body.4.')
    if use_1x1conv:
        x = ref.conv2d(x, p['downsample.0.weight'], p['downsample.0.bias'], strides)
    close(block(X).asnumpy(), ref.relu(y + x), rtol=1e-5)


@pytest.mark.parametrize('layout', ['v1.5', 'v1'])
def test_bottleneck_against_numpy(layout):
    """v1.5: the stride on the 3x3 convolution, no biases; v1: on the first
    1x1, which has a bias, as the last 1x1 does."""
    block = seed_parameters(Bottleneck(16, True, 2, layout), (2, 8, 7, 7), var_range=TINY_VAR)
    X = seeded_input((2, 8, 7, 7))
    x, p = X.asnumpy().astype(np.float64), arrays(block)
    first, middle = (2, 1) if layout == 'v1' else (1, 2)
    y = ref.relu(bn(ref.conv2d(x, p['body.0.weight'], p.get('body.0.bias'), first), p,
                    'body.1.'))
    y = ref.relu(bn(ref.conv2d(y, p['body.3.weight'], None, middle, 1), p, 'body.4.'))
    y = bn(ref.conv2d(y, p['body.6.weight'], p.get('body.6.bias')), p, 'body.7.')
    x = bn(ref.conv2d(x, p['downsample.0.weight'], None, 2), p, 'downsample.1.')
    assert ('body.0.bias' in p) == ('body.6.bias' in p) == (layout == 'v1')
    close(block(X).asnumpy(), ref.relu(y + x), rtol=1e-5)


def test_inception_against_numpy():
    """Four paths concatenated in order: 1x1; 1x1-3x3; 1x1-5x5; 3x3 max pool-1x1."""
    block = seed_parameters(Inception(2, (3, 4), (2, 3), 2), (2, 5, 6, 6))
    X = seeded_input((2, 5, 6, 6))
    x, p = X.asnumpy().astype(np.float64), arrays(block)

    def conv(y, key, padding=0):
        return ref.relu(ref.conv2d(y, p[key + '.weight'], p[key + '.bias'], padding=padding))

    paths = [conv(x, '0'), conv(conv(x, '1.0'), '1.1', 1), conv(conv(x, '2.0'), '2.1', 2),
             conv(ref.pool2d(x, 3, 1, 1, 'max'), '3.1')]
    close(block(X).asnumpy(), np.concatenate(paths, axis=1), rtol=1e-5)


@pytest.mark.parametrize('bottleneck', [False, True])
def test_dense_block_against_numpy(bottleneck):
    """Each step: X -> concat(X, conv_block(X)), the input's channels first."""
    block = seed_parameters(DenseBlock(2, 3, bottleneck), (2, 4, 5, 5), var_range=TINY_VAR)
    X = seeded_input((2, 4, 5, 5))
    x, p = X.asnumpy().astype(np.float64), arrays(block)
    for step in range(2):  # step i: children 0 (identity) and 1 (the conv block)
        k = f'{step}.1.'
        y = x
        if bottleneck:
            y = ref.conv2d(ref.relu(bn(y, p, k + '0.')), p[k + '2.weight'])
            norm, conv = k + '3.', k + '5.'
        else:
            norm, conv = k + '0.', k + '2.'
        y = ref.conv2d(ref.relu(bn(y, p, norm)), p[conv + 'weight'], p.get(conv + 'bias'), 1, 1)
        x = np.concatenate([x, y], axis=1)
    close(block(X).asnumpy(), x, rtol=1e-5)


@pytest.mark.parametrize('bypass, bypass_conv', [(False, False), (True, False), (False, True)])
def test_fire_against_numpy(bypass, bypass_conv):
    """relu(1x1 squeeze), then relu(1x1) and relu(3x3, padding 1) expansions
    concatenated; plus the input, or a 1x1 convolution of it."""
    channels = 4 if bypass else 5
    block = seed_parameters(Fire(2, 2, bypass, bypass_conv), (2, channels, 6, 6))
    X = seeded_input((2, channels, 6, 6))
    x, p = X.asnumpy().astype(np.float64), arrays(block)
    s = ref.relu(ref.conv2d(x, p['0.0.weight'], p['0.0.bias']))
    y = np.concatenate([ref.relu(ref.conv2d(s, p['1.0.0.weight'], p['1.0.0.bias'])),
                        ref.relu(ref.conv2d(s, p['1.1.0.weight'], p['1.1.0.bias'], padding=1))],
                       axis=1)
    if bypass:
        y = y + x
    if bypass_conv:
        y = y + ref.conv2d(x, p['bypass_conv.weight'], p['bypass_conv.bias'])
    close(block(X).asnumpy(), y, rtol=1e-5)


def test_scratch_batch_norm_against_numpy():
    """Eval mode: moving statistics and epsilon, small variances so that
    epsilon counts."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4, 2, 2))
    gamma, beta, mean = rng.normal(size=(3, 1, 4, 1, 1))
    var = rng.uniform(1e-4, 1e-2, size=(1, 4, 1, 1))
    out, _, _ = batch_norm(*(nd.array(a) for a in (x, gamma, beta, mean, var)), eps=1e-5,
                           momentum=0.9)
    close(out.asnumpy(), ref.batch_norm(x, gamma, beta, mean, var, 1e-5), rtol=1e-5)


@pytest.mark.parametrize('name', ['lenet_bn', 'lenet_bn_scratch'])
def test_batch_norm_lenet_against_numpy(name):
    """First edition LeNet with batch norm (epsilon 1e-5) before every sigmoid;
    moving variances near epsilon, so that a wrong epsilon shows."""
    X = seeded_input((2, 1, 28, 28))
    net = seed_parameters(get_model(name), (2, 1, 28, 28), gain=4.0, var_range=TINY_VAR)
    x, p = X.asnumpy().astype(np.float64), arrays(net)
    y = ref.sigmoid(bn(ref.conv2d(x, p['0.weight'], p['0.bias']), p, '1.'))
    y = ref.pool2d(y, 2, 2)
    y = ref.sigmoid(bn(ref.conv2d(y, p['4.weight'], p['4.bias']), p, '5.'))
    y = ref.pool2d(y, 2, 2)
    y = ref.sigmoid(bn(ref.dense(y, p['8.weight'], p['8.bias']), p, '9.'))
    y = ref.sigmoid(bn(ref.dense(y, p['11.weight'], p['11.bias']), p, '12.'))
    close(net(X).asnumpy(), ref.dense(y, p['14.weight'], p['14.bias']), rtol=1e-4)
