"""Float64 NumPy versions of the layers the networks are built of, written
from their definitions, for output tests of blocks (tests/test_model_outputs.py).
Arrays are (N, C, H, W); weights (out, in, kh, kw) as Gluon stores them."""
import numpy as np


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Cross-correlation, as Gluon's Conv2D computes it."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_c, _, kh, kw = weight.shape
    h = (x.shape[2] - kh) // stride + 1
    w = (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_c, h, w))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * h:stride, j:j + stride * w:stride]
            out += np.einsum('nchw,oc->nohw', patch, weight[:, :, i, j])
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    return out


def pool2d(x, size, stride, padding=0, kind='max', ceil_mode=False):
    """Max or average pooling; average pooling counts padded zeros, as MXNet's
    default (count_include_pad) does; padding for max pooling is -inf."""
    fill = -np.inf if kind == 'max' else 0.0
    h_in, w_in = x.shape[2] + 2 * padding, x.shape[3] + 2 * padding
    rounding = np.ceil if ceil_mode else np.floor
    h = int(rounding((h_in - size) / stride)) + 1
    w = int(rounding((w_in - size) / stride)) + 1
    extra_h = max(0, (h - 1) * stride + size - h_in)
    extra_w = max(0, (w - 1) * stride + size - w_in)
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding + extra_h), (padding, padding + extra_w)),
               constant_values=fill)
    windows = np.stack([x[:, :, i:i + stride * h:stride, j:j + stride * w:stride]
                        for i in range(size) for j in range(size)])
    return windows.max(axis=0) if kind == 'max' else windows.mean(axis=0)


def dense(x, weight, bias=None):
    out = x.reshape(x.shape[0], -1) @ weight.T
    return out + bias if bias is not None else out


def batch_norm(x, gamma, beta, mean, var, eps=1e-5):
    """Eval-mode batch normalisation over axis 1 (moving statistics)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape)
            + beta.reshape(shape))


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    with np.errstate(over='ignore'):  # exp(-x) = inf for very negative x gives 0, as it should
        return 1 / (1 + np.exp(-x))
