"""Testing as the VGG paper does it (Simonyan and Zisserman, 2015,
arXiv:1409.1556, sections 3.2 and 4.2-4.4).

- Dense evaluation: the fully-connected layers become convolutions (the
  first 7x7, the other two 1x1) with the same weights, so the network runs on
  a whole image of any size and gives a class score map, averaged into one
  score per class (`to_dense`).
- Several test scales Q (the image's shorter side), horizontal flips, and
  multi-crop: a grid of 224 x 224 crops at each scale, each with its flip.
- An ensemble averages the softmax of several networks.
- Top-1 and top-5 error, the paper's measures.

Every function here takes images as uint8 (H, W, 3) NDArrays, as
`mx.image.imread` gives them; `prepare` turns an image, or a stack of crops,
into the network's normalized input, as `augment` does for training.
"""
import mxnet as mx
import numpy as np
from mxnet import image, nd
from mxnet.gluon import nn

from ..data.augment import to_input


class DenseEvaluation(nn.HybridBlock):
    """A VGG's convolutional blocks followed by its fully-connected layers as
    convolutions; the output is the spatial mean of the class score map."""

    def __init__(self, features, head, **kwargs):
        super().__init__(**kwargs)
        self.features = features
        self.head = head

    def score_map(self, x):
        """(N, classes, h, w): the class scores at each position."""
        return self.head(self.features(x))

    def hybrid_forward(self, F, x):
        return F.mean(self.head(self.features(x)), axis=(2, 3))


def to_dense(net, kernel=7):
    """The `DenseEvaluation` network equivalent to `net`, a VGG built by
    `d2lnets.models.vgg.vgg`: convolutional blocks, then Dense layers with
    Dropout between them. The convolutional blocks are shared with `net`; each
    Dense layer's weights are copied, reshaped, into a new convolution."""
    blocks = list(net)
    first_dense = next((i for i, b in enumerate(blocks) if isinstance(b, nn.Dense)), None)
    if first_dense is None:
        raise ValueError('the network has no fully-connected layer to convert; give a VGG '
                         'built by d2lnets.models.vgg.vgg')
    features = nn.HybridSequential()
    for block in blocks[:first_dense]:
        features.add(block)
    head = nn.HybridSequential()
    for position, block in enumerate(blocks[first_dense:]):
        if isinstance(block, nn.Dropout):
            continue
        if not isinstance(block, nn.Dense):
            raise ValueError(f'{type(block).__name__} after the first Dense layer: not a VGG')
        weight = block.weight.data()
        size = kernel if position == 0 else 1
        channels, rest = weight.shape[1] // (size * size), weight.shape[1] % (size * size)
        if rest:
            raise ValueError(f'a Dense layer of {weight.shape[1]} inputs cannot take a '
                             f'{size}x{size} map; the input size is not the training one')
        conv = nn.Conv2D(weight.shape[0], kernel_size=size, in_channels=channels,
                         activation=block.act._act_type if block.act else None)
        conv.initialize(ctx=weight.context)
        conv.weight.set_data(weight.reshape((weight.shape[0], channels, size, size)))
        conv.bias.set_data(block.bias.data())
        head.add(conv)
    return DenseEvaluation(features, head)


TO_INPUT = to_input()


def prepare(images, ctx=None):
    """uint8 (H, W, 3), or a batch (N, H, W, 3), -> normalized float32
    (N, 3, H, W) on `ctx` (default CPU)."""
    batch = images if images.ndim == 4 else images.expand_dims(axis=0)
    return TO_INPUT(batch).as_in_context(ctx or mx.cpu())


def _with_flip(x, flips):
    return nd.concat(x, x.flip(axis=3), dim=0) if flips else x


def dense_scores(net, img, scales=(256, 384, 512), flips=True, ctx=None):
    """Class probabilities of one image by dense evaluation: the softmax of the
    averaged score map at each scale Q (and of its flip), averaged."""
    probs = []
    for q in scales:
        x = _with_flip(prepare(image.resize_short(img, q), ctx), flips)
        probs.append(nd.softmax(net(x)).mean(axis=0))
    return nd.stack(*probs).mean(axis=0)


def crops(img, size=224, grid=5):
    """`grid` x `grid` crops of `size` x `size` spread evenly over `img`."""
    height, width = img.shape[:2]
    if height < size or width < size:
        raise ValueError(f'a {height}x{width} image is smaller than the {size}x{size} crop')
    tops = np.linspace(0, height - size, grid).round().astype(int)
    lefts = np.linspace(0, width - size, grid).round().astype(int)
    return [img[t:t + size, left:left + size] for t in tops for left in lefts]


def multi_crop_scores(net, img, scales=(256, 384, 512), size=224, grid=5, flips=True,
                      ctx=None):
    """Class probabilities of one image averaged over a grid of crops at each
    scale and their flips (the paper's 5 x 5 x 2 crops a scale)."""
    probs = []
    for q in scales:
        batch = prepare(nd.stack(*crops(image.resize_short(img, q), size, grid)), ctx)
        probs.append(nd.softmax(net(_with_flip(batch, flips))).mean(axis=0))
    return nd.stack(*probs).mean(axis=0)


def ensemble(score_functions, img):
    """The average of several networks' class probabilities for `img`."""
    return nd.stack(*[score(img) for score in score_functions]).mean(axis=0)


def _as_numpy(values):
    """An MXNet NDArray (read back from its device) or anything NumPy takes."""
    return values.asnumpy() if isinstance(values, nd.NDArray) else np.asarray(values)


def topk_error(probabilities, labels, k):
    """Fraction of examples whose label is not among the `k` most probable classes.

    `probabilities` is (N, classes) and `labels` N class indices, as NumPy
    arrays, lists or MXNet NDArrays. Raises ValueError for other shapes, for
    `k` outside 1..classes and for a label that is not a class index.
    """
    probabilities, labels = _as_numpy(probabilities), _as_numpy(labels)
    if probabilities.ndim != 2 or labels.ndim != 1 or len(probabilities) != len(labels) \
            or not probabilities.size:
        raise ValueError(f'need (N, classes) probabilities for N labels, N and classes above '
                         f'0, got '
                         f'{probabilities.shape} and {labels.shape}')
    classes = probabilities.shape[1]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= classes:
        raise ValueError(f'k must be a whole number in 1..{classes} (the number of classes), '
                         f'got {k!r}')
    if labels.dtype.kind not in 'iuf':
        raise ValueError(f'labels must be class indices (numbers), got {labels.dtype} values')
    outside = (labels < 0) | (labels >= classes) | (labels != np.floor(labels))
    if outside.any():
        raise ValueError(f'label {labels[outside][0]:g} is not a class index in 0..{classes - 1}')
    top = np.argsort(-probabilities, axis=1, kind='stable')[:, :k]
    return float(np.mean(~np.any(top == labels.astype(np.int64)[:, None], axis=1)))
