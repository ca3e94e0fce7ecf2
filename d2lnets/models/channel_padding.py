"""A `HybridSequential` that runs a narrow convolution (fewer than 8 output
channels, as LeNet's first has 6) at 8 channels, for speed on CPUs.

Why: oneDNN, MXNet's CPU backend, keeps a convolution's output in its blocked
layout (8 channels to a block) only when the convolution has 8 or more output
channels. LeNet's first convolution has 6, so its activations stay in the
plain NCHW layout, and oneDNN pools them and runs the next convolution's
backward pass with its slowest kernels (`simple_nchw` pooling and GEMM
convolutions; `DNNL_VERBOSE=1` names them). docs/results.md, "LeNet's narrow
first layer, padded to 8 channels", has the profiles and timings.

What: the layers stay the book's, one child each, with their own parameters,
names and shapes, so printing the network, the layer-by-layer shape printout,
saved parameters and parameter counts are unchanged. Only the forward pass
differs, and only for a run of three children (five with batch norm, below):
a `Conv2D` with fewer than 8 output channels, a `MaxPool2D` or `AvgPool2D`,
and a second `Conv2D`. There
the first convolution gets zero filters (zero weights, zero bias) up to 8
output channels, its activation and the pooling run on all 8, and the second
convolution gets zero weights for the added input channels. The added
channels are constant and meet only zero weights, so the output and every
parameter's gradient equal those of the plain sequence (up to float32
rounding: oneDNN sums in another order). Everything else runs as in
`HybridSequential`.

With batch normalisation (BN-LeNet: a `Conv2D` with fewer than 8 channels, a
`BatchNorm`, an `Activation`, a pooling and a `Conv2D`), the batch norm runs
on all 8 channels too: its gamma and beta are joined with 1s and 0s, so the
added channels stay 0. MXNet's batch norm updates its moving averages in
place, so they must be graph variables of their own: the container keeps two
8-entry ones (`padded_running_mean`, `padded_running_var`). The layer's own
6-entry `running_mean` and `running_var` are made views of their first 6
entries (again whenever either gets new arrays, keeping the layer's values),
so that the padded graph's updates are the layer's, and what
`load_parameters` writes into the layer is what the graph predicts with. The
8-entry ones are left out of `collect_params()` (except while MXNet builds
the container's graph) and of saved files, so trainers, parameter counts and
saved files see the book's layers only. When a hybridized parent block
traces the container into its own graph, the views are not kept up for it,
so there the batch-norm stage runs plain, unpadded.
"""
import warnings

from mxnet import autograd, symbol
from mxnet.gluon import nn
from mxnet.gluon.parameter import DeferredInitializationError

BLOCK_CHANNELS = 8
UNUSED_AVERAGES = r'Parameter .*running_(mean|var).* is not used by any computation'
POOLINGS = (nn.MaxPool2D, nn.AvgPool2D)


def _plain_conv(layer):
    return (isinstance(layer, nn.Conv2D) and layer._kwargs['layout'] == 'NCHW'
            and layer._kwargs['num_group'] == 1)


def _paddable(first, pool, second):
    """Whether three consecutive layers are a narrow convolution, a pooling and
    a convolution that reads the first's channels."""
    return (_plain_conv(first) and first._channels < BLOCK_CHANNELS
            and isinstance(pool, POOLINGS) and pool._kwargs['layout'] == 'NCHW'
            and _plain_conv(second) and second.weight.shape[1] in (0, first._channels))


def _paddable_with_batch_norm(first, norm, act, pool, second):
    """Whether five consecutive layers are a narrow convolution without its own
    activation, a batch norm over its channels, an activation, a pooling and a
    convolution that reads the first's channels."""
    return (_paddable(first, pool, second) and first.act is None
            and isinstance(norm, nn.BatchNorm) and norm._kwargs['axis'] == 1
            and not norm.fuse_relu and isinstance(act, nn.Activation))


class ChannelPaddedSequential(nn.HybridSequential):
    """`nn.HybridSequential` whose narrow convolution, pooling and next
    convolution run at 8 channels (see the module's docstring)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._padded_averages = None
        self._padded_at = None  # index of the batch-norm stage's first convolution
        self._traced_by_parent = False
        self._shared = {}
        self._graph_step = None  # 'build' or 'infer' while MXNet does so

    def add(self, *blocks):
        super().add(*blocks)
        if self._padded_averages is not None:
            return
        self._padded_at = self._batch_norm_stage()
        if self._padded_at is None:
            return
        first, norm = list(self._children.values())[self._padded_at:self._padded_at + 2]
        # Known shapes: the padded graph does not let MXNet infer them.
        for param in (norm.gamma, norm.beta, norm.running_mean, norm.running_var):
            param.shape = (first._channels,)
        with self.name_scope():
            self._padded_averages = (
                self.params.get('padded_running_mean', shape=(BLOCK_CHANNELS,),
                                init='zeros', grad_req='null', differentiable=False),
                self.params.get('padded_running_var', shape=(BLOCK_CHANNELS,),
                                init='ones', grad_req='null', differentiable=False))

    def collect_params(self, select=None):
        """The layers' parameters, as `HybridSequential`'s. While MXNet builds
        this container's graph, the 8-entry moving averages too; while it infers
        the graph's deferred shapes, those and not the layer's own averages,
        which the padded graph does not read."""
        params = super().collect_params(select)
        if self._padded_averages is None or self._graph_step == 'build':
            return params
        if self._graph_step == 'infer':
            norm = self._padded_norm()
            left_out = (norm.running_mean, norm.running_var)
        else:
            left_out = self._padded_averages
        for param in left_out:
            params._params.pop(param.name, None)
        return params

    def _build_cache(self, *args):
        with warnings.catch_warnings():
            # The padded graph updates the layer's averages through the views.
            warnings.filterwarnings('ignore', message=UNUSED_AVERAGES)
            self._in_graph_step('build', super()._build_cache, *args)

    def _deferred_infer_shape(self, *args):
        self._in_graph_step('infer', super()._deferred_infer_shape, *args)

    def _in_graph_step(self, step, method, *args):
        self._graph_step = step
        try:
            method(*args)
        finally:
            self._graph_step = None

    def _batch_norm_stage(self):
        """The index of the first batch-norm stage's convolution, or None."""
        layers = list(self._children.values())
        for i in range(len(layers) - 4):
            if _paddable_with_batch_norm(*layers[i:i + 5]):
                return i
        return None

    def _padded_norm(self):
        """The batch norm of the padded batch-norm stage."""
        return list(self._children.values())[self._padded_at + 1]

    def forward(self, x, *args):
        if isinstance(x, symbol.Symbol):  # traced into a parent's graph
            self._traced_by_parent = True
            try:
                return super().forward(x, *args)
            finally:
                self._traced_by_parent = False
        if self._padded_averages is not None:
            self._share_averages(x.context)
        return super().forward(x, *args)

    def _share_averages(self, ctx):
        """Make the batch norm's own moving averages on `ctx` views of the first
        entries of the container's 8-entry ones, which the padded graph updates
        (MXNet's oneDNN batch norm does so in its backward pass). Done again
        whenever either side got new arrays (initialize, load_parameters into a
        fresh network, reset_ctx); the layer's values are kept."""
        norm = self._padded_norm()
        for own, padded in zip((norm.running_mean, norm.running_var), self._padded_averages):
            if own._data is None or ctx not in own.list_ctx():
                return  # not initialized (on ctx): the plain layers run, or say so
            if padded._data is None or padded.list_ctx() != own.list_ctx():
                padded.initialize(ctx=own.list_ctx(), force_reinit=True)
            i = own.list_ctx().index(ctx)
            shared = self._shared.get((own.name, ctx))
            if shared is not None and own._data[i] is shared[1] and padded._data[i] is shared[0]:
                continue
            full, channels = padded._data[i], own.shape[0]
            with autograd.pause():
                full[:channels] = own._data[i]
            own._data[i] = full[0:channels]
            self._shared[(own.name, ctx)] = (full, own._data[i])

    def hybrid_forward(self, F, x):
        layers = list(self._children.values())
        i = 0
        while i < len(layers):
            if i == self._padded_at and not self._traced_by_parent:
                padded = _padded_batch_norm_stage(F, x, self._padded_averages, *layers[i:i + 5])
                if padded is not None:
                    x = padded
                    i += 5
                    continue
            if i + 2 < len(layers) and _paddable(*layers[i:i + 3]):
                padded = _padded_stage(F, x, *layers[i:i + 3])
                if padded is not None:
                    x = padded
                    i += 3
                    continue
            x = layers[i](x)
            i += 1
        return x


def _padded_batch_norm_stage(F, x, averages, first, norm, act, pool, second):
    """`second(pool(act(norm(first(x)))))` with `first` and `norm` at 8
    channels, the moving averages in the container's 8-entry `averages`; None
    when the parameters are not initialized yet."""
    extra = BLOCK_CHANNELS - first._channels
    try:
        first_weight, first_bias = _arrays(F, x, first)
        second_weight, second_bias = _arrays(F, x, second)
        gamma, beta = _arrays_of(F, x, norm.gamma, norm.beta)
        mean, var = _arrays_of(F, x, *averages)
    except DeferredInitializationError:
        return None
    y = _first_convolution(F, x, first, first_weight, first_bias, extra)
    padding = _zeros(F, gamma, 0, extra)
    y = F.BatchNorm(y, F.concat(gamma, F.ones_like(padding), dim=0),
                    F.concat(beta, padding, dim=0), mean, var, **norm._kwargs)
    y = pool(act(y))
    return _second_convolution(F, y, second, second_weight, second_bias, first._channels, extra)


def _padded_stage(F, x, first, pool, second):
    """`second(pool(first(x)))`, with `first` padded to 8 output channels; None
    when the parameters are not initialized yet (an imperative first call:
    the plain layers then initialize them)."""
    extra = BLOCK_CHANNELS - first._channels
    try:
        first_weight, first_bias = _arrays(F, x, first)
        second_weight, second_bias = _arrays(F, x, second)
    except DeferredInitializationError:
        return None
    y = _first_convolution(F, x, first, first_weight, first_bias, extra)
    if first.act is not None:
        y = first.act(y)
    y = pool(y)
    return _second_convolution(F, y, second, second_weight, second_bias, first._channels, extra)


def _first_convolution(F, x, first, weight, bias, extra):
    """`first(x)` without its activation, with `extra` zero filters added."""
    args = [F.concat(weight, _zeros(F, weight, 0, extra), dim=0)]
    if bias is not None:
        args.append(F.concat(bias, _zeros(F, bias, 0, extra), dim=0))
    return F.Convolution(x, *args, **dict(first._kwargs, num_filter=BLOCK_CHANNELS))


def _second_convolution(F, y, second, weight, bias, channels, extra):
    """`second(y)` for an input `y` with `extra` constant channels after its
    `channels` real ones: zero weights for the constant ones."""
    # The reshape to its known shape lets MXNet infer a deferred weight's
    # input channels, which the concatenation alone leaves open.
    kernel = second._kwargs['kernel']
    weight = F.reshape(weight, shape=(second._channels, channels) + kernel)
    args = [F.concat(weight, _zeros(F, weight, 1, extra), dim=1)]
    if bias is not None:
        args.append(bias)
    y = F.Convolution(y, *args, **second._kwargs)
    return second.act(y) if second.act is not None else y


def _zeros(F, like, axis, size):
    """Zeros of `like`'s shape and type, but `size` long on `axis`."""
    return F.zeros_like(F.repeat(F.slice_axis(like, axis=axis, begin=0, end=1), size, axis))


def _arrays(F, x, conv):
    """(weight, bias or None) of `conv` as graph variables or as arrays on x's context."""
    return _arrays_of(F, x, conv.weight, conv.bias)


def _arrays_of(F, x, *params):
    """`params` as graph variables or as arrays on x's context (None stays None)."""
    def array(param):
        if param is None:
            return None
        return param.var() if F is symbol else param.data(x.context)
    return tuple(array(param) for param in params)
