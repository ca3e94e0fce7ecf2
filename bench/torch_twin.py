"""The same network in PyTorch, built from a Gluon one layer by layer, with
the Gluon parameters copied in, so that the benchmark compares the two
frameworks on exactly the same architecture (the tests check the outputs
agree).

Sequential networks of standard layers convert (LeNet, AlexNet, VGG, NiN,
BN-LeNet), and so do the blocks of d2lnets' own that the chapter networks
are built of: `HybridConcurrent` (GoogLeNet's Inception, SqueezeNet's
expand layer), ResNet's `Residual` and `Bottleneck`, DenseNet's `DenseBlock`
and SqueezeNet's `Fire`. Any other block raises `NotConvertible`.
"""
import mxnet as mx
import torch
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent, Identity

from d2lnets.models.resnet import Residual
from d2lnets.models.squeezenet import Fire
from d2lnets.viz.shapes import _runs_children_in_order

ACTIVATIONS = {'relu': torch.nn.ReLU, 'sigmoid': torch.nn.Sigmoid, 'tanh': torch.nn.Tanh}


class NotConvertible(TypeError):
    """A Gluon block with no PyTorch counterpart here."""


class BatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """Batch norm over axis 1 of (N, C) or (N, C, H, W), as Gluon's nn.BatchNorm."""

    def _check_input_dim(self, input):
        if input.dim() not in (2, 4):
            raise ValueError(f'expected a 2-D or 4-D input, got {input.dim()}-D')


class Concurrent(torch.nn.Module):
    """Gluon's `HybridConcurrent`: the paths side by side, concatenated on `dim`."""

    def __init__(self, paths, dim):
        super().__init__()
        self.paths, self.dim = torch.nn.ModuleList(paths), dim

    def forward(self, x):
        return torch.cat([path(x) for path in self.paths], dim=self.dim)


class Shortcut(torch.nn.Module):
    """ReLU(body(x) + shortcut(x)): ResNet's `Residual` and `Bottleneck`."""

    def __init__(self, body, shortcut):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))



class FireTwin(torch.nn.Module):
    """SqueezeNet's `Fire`: expand(squeeze(x)), plus the bypass when it has one
    (`bypass` a module, or `True` for the identity)."""

    def __init__(self, squeeze, expand, bypass):
        super().__init__()
        self.squeeze, self.expand = squeeze, expand
        self.bypass = bypass if isinstance(bypass, torch.nn.Module) else None
        self.identity = bypass is True

    def forward(self, x):
        out = self.expand(self.squeeze(x))
        if self.bypass is not None:
            return out + self.bypass(x)
        return out + x if self.identity else out


def torch_twin(block):
    """A `torch.nn.Module` computing what the initialised Gluon `block` computes.

    It waits for MXNet's engine first: right after a forward pass in training
    mode, oneDNN may still be reordering a convolution's weight in place, and
    `asnumpy()` can read the weight half-reordered (seen on MXNet 1.9.1 under
    load, 3 twins in 40 wrong; like apache/mxnet#15555)."""
    mx.nd.waitall()
    return _module(block)


def _module(block):
    layers = []
    _convert(block, layers)
    return layers[0] if len(layers) == 1 else torch.nn.Sequential(*layers)


def _convert(block, layers):
    if isinstance(block, HybridConcurrent):
        layers.append(Concurrent([_module(path) for path in block], block.axis))
    elif _runs_children_in_order(block):  # DenseBlock too: steps of (identity, conv block)
        for child in block:
            _convert(child, layers)
    elif isinstance(block, Residual):  # Bottleneck too
        layers.append(Shortcut(_module(block.body), _shortcut(block.downsample)))
    elif isinstance(block, Fire):
        bypass = block.bypass if block.bypass_conv is None else _module(block.bypass_conv)
        layers.append(FireTwin(_module(block[0]), _module(block[1]), bypass))
    elif isinstance(block, Identity):
        layers.append(torch.nn.Identity())
    elif isinstance(block, nn.Conv2D):
        layers.append(_conv(block))
        _activation(block.act, layers)
    elif isinstance(block, nn.Dense):
        if block._flatten:
            layers.append(torch.nn.Flatten())
        weight = block.weight.data().asnumpy()
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=block.bias is not None)
        _copy(linear, block)
        layers.append(linear)
        _activation(block.act, layers)
    elif isinstance(block, (nn.MaxPool2D, nn.AvgPool2D, nn.GlobalAvgPool2D,
                            nn.GlobalMaxPool2D)):
        layers.append(_pool(block._kwargs))
    elif isinstance(block, nn.Activation):
        _activation(block, layers)
    elif isinstance(block, nn.Dropout):
        layers.append(torch.nn.Dropout(block._rate))
    elif isinstance(block, nn.Flatten):
        layers.append(torch.nn.Flatten())
    elif isinstance(block, nn.BatchNorm):
        layers.append(_batch_norm(block))
    else:
        raise NotConvertible(f'{type(block).__name__} has no PyTorch twin here')


def _shortcut(block):
    return torch.nn.Identity() if block is None else _module(block)


def _conv(block):
    k = block._kwargs
    weight = block.weight.data().asnumpy()
    conv = torch.nn.Conv2d(weight.shape[1] * k['num_group'], k['num_filter'], k['kernel'],
                           stride=k['stride'], padding=k['pad'], dilation=k['dilate'],
                           groups=k['num_group'], bias=not k['no_bias'])
    _copy(conv, block)
    return conv


def _pool(k):
    if k['global_pool']:
        return (torch.nn.AdaptiveAvgPool2d(1) if k['pool_type'] == 'avg'
                else torch.nn.AdaptiveMaxPool2d(1))
    ceil = k['pooling_convention'] == 'full'
    if k['pool_type'] == 'max':
        return torch.nn.MaxPool2d(k['kernel'], k['stride'], k['pad'], ceil_mode=ceil)
    return torch.nn.AvgPool2d(k['kernel'], k['stride'], k['pad'], ceil_mode=ceil,
                              count_include_pad=k['count_include_pad'])


def _batch_norm(block):
    k = block._kwargs
    gamma = block.gamma.data().asnumpy()
    norm = BatchNorm(gamma.shape[0], eps=k['eps'], momentum=1 - k['momentum'])
    with torch.no_grad():
        norm.weight.copy_(torch.from_numpy(gamma))
        norm.bias.copy_(torch.from_numpy(block.beta.data().asnumpy()))
        norm.running_mean.copy_(torch.from_numpy(block.running_mean.data().asnumpy()))
        norm.running_var.copy_(torch.from_numpy(block.running_var.data().asnumpy()))
    return norm


def _activation(act, layers):
    if act is None:
        return
    if act._act_type not in ACTIVATIONS:
        raise NotConvertible(f'activation {act._act_type} has no PyTorch twin here')
    layers.append(ACTIVATIONS[act._act_type]())


def _copy(module, block):
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(block.weight.data().asnumpy()))
        if block.bias is not None:
            module.bias.copy_(torch.from_numpy(block.bias.data().asnumpy()))
