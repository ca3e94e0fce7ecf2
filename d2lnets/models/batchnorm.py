"""Batch normalisation: Ioffe and Szegedy, "Batch Normalization: Accelerating
Deep Network Training by Reducing Internal Covariate Shift", ICML 2015
(arXiv:1502.03167); D2L section 8.5 (5.10 in the book's first MXNet edition).
Layer normalisation for comparison: Ba, Kiros and Hinton, "Layer
Normalization", 2016 (arXiv:1607.06450).

`batch_norm` and `BatchNorm` are the book's from-scratch version: batch
statistics while `autograd.is_training()`, moving averages otherwise. The
block updates its moving averages in place, which a symbolic graph cannot,
so it is an imperative `Block` as in the book; they are parameters without
gradients, so checkpoints keep them. `nn.BatchNorm` is the concise version.
"""
from mxnet import autograd, init, nd
from mxnet.gluon import nn

from .lenet import lenet_layers
from .registry import register_model


def _stat_shape(num_features, num_dims):
    if num_dims not in (2, 4):
        raise ValueError(f'num_dims must be 2 (dense) or 4 (convolution), got {num_dims}')
    return (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Normalise `X` per feature (per channel for 4-D input); return
    (Y, new moving mean, new moving variance)."""
    if not autograd.is_training():
        X_hat = (X - moving_mean) / nd.sqrt(moving_var + eps)
    else:
        if X.ndim not in (2, 4):
            raise ValueError(f'batch_norm takes 2-D or 4-D input, got shape {X.shape}')
        axes = (0,) if X.ndim == 2 else (0, 2, 3)
        mean = X.mean(axis=axes, keepdims=True)
        var = ((X - mean) ** 2).mean(axis=axes, keepdims=True)
        X_hat = (X - mean) / nd.sqrt(var + eps)
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    return gamma * X_hat + beta, moving_mean, moving_var


class BatchNorm(nn.Block):
    """The book's from-scratch batch normalisation layer for `num_features`
    features of `num_dims`-dimensional input (2: dense, 4: convolution)."""

    def __init__(self, num_features, num_dims, eps=1e-5, momentum=0.9, **kwargs):
        super().__init__(**kwargs)
        shape = _stat_shape(num_features, num_dims)
        self.eps, self.momentum = eps, momentum
        self.gamma = self.params.get('gamma', shape=shape, init=init.One())
        self.beta = self.params.get('beta', shape=shape, init=init.Zero())
        self.moving_mean = self.params.get('moving_mean', shape=shape, init=init.Zero(),
                                           grad_req='null', differentiable=False)
        self.moving_var = self.params.get('moving_var', shape=shape, init=init.One(),
                                          grad_req='null', differentiable=False)

    def forward(self, X):
        ctx = X.context
        Y, mean, var = batch_norm(X, self.gamma.data(ctx), self.beta.data(ctx),
                                  self.moving_mean.data(ctx), self.moving_var.data(ctx),
                                  self.eps, self.momentum)
        if autograd.is_training():
            self.moving_mean.set_data(mean.detach())
            self.moving_var.set_data(var.detach())
        return Y


class LayerNorm(nn.HybridBlock):
    """Normalise each example over all its features (channels and positions),
    then scale and shift per feature: statistics independent of the batch."""

    def __init__(self, num_features, num_dims, eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        shape = _stat_shape(num_features, num_dims)
        self.eps = eps
        self.gamma = self.params.get('gamma', shape=shape, init=init.One())
        self.beta = self.params.get('beta', shape=shape, init=init.Zero())

    def hybrid_forward(self, F, X, gamma, beta):
        mean = F.mean(X, axis=0, exclude=True, keepdims=True)
        var = F.mean(F.square(F.broadcast_sub(X, mean)), axis=0, exclude=True, keepdims=True)
        X_hat = F.broadcast_div(F.broadcast_sub(X, mean), F.sqrt(var + self.eps))
        return F.broadcast_add(F.broadcast_mul(X_hat, gamma), beta)


@register_model(input_shape=(1, 28, 28))
def lenet_bn(num_classes=10):
    """The book's LeNet with the concise `nn.BatchNorm` after every convolution
    and hidden dense layer (first edition: max pooling, no padding), a
    `HybridSequential` as the book builds it."""
    net = nn.HybridSequential()
    net.add(*lenet_layers('first', num_classes, norm=lambda features, dims: nn.BatchNorm()))
    return net


@register_model(input_shape=(1, 28, 28))
def lenet_bn_scratch(num_classes=10):
    """The book's LeNet with the from-scratch `BatchNorm` (an imperative Sequential)."""
    net = nn.Sequential()
    net.add(*lenet_layers('first', num_classes, norm=BatchNorm))
    return net


@register_model(input_shape=(1, 28, 28))
def lenet_ln(num_classes=10):
    """LeNet with `LayerNorm` where `lenet_bn` has batch normalisation."""
    net = nn.HybridSequential()
    net.add(*lenet_layers('first', num_classes, norm=LayerNorm))
    return net
