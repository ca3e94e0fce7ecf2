"""Pictures of a network and of a run, drawn from the network and its data.

* `plot_architecture`: one box per top-level block with its output shape and
  parameter count (the book's shape table, D2L section 7.6, as a diagram);
* `plot_filters`: the first convolution's kernels, what the network looks for
  in raw pixels (cf. AlexNet's learned filters, D2L section 8.1);
* `plot_feature_maps`: one image's channels after each block;
* `confusion_matrix` / `plot_confusion_matrix`: which classes are taken for
  which over a test set;
* `worst_misclassified` / `plot_misclassified`: the wrong predictions the
  network was surest of;
* `save_run_pictures`: all five as PNG files, as the chapter modules write them.

Every `plot_*` returns a `matplotlib.figure.Figure` (no pyplot state), which
a notebook cell shows when it is the cell's value.
"""
import io
import math
import os
from collections import namedtuple

import mxnet as mx
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from mxnet import nd

from .._files import save_figure
from .shapes import _top_level_blocks, layer_table

Misclassified = namedtuple('Misclassified', 'image label predicted confidence')
PICTURE_FILES = ('architecture.png', 'filters.png', 'feature_maps.png', 'confusion.png',
                 'misclassified.png')
BLOCKS_PER_COLUMN = 9


class Picture(Figure):
    """A Figure that a notebook shows as PNG even where pyplot was never imported."""

    def _repr_png_(self):
        png = io.BytesIO()
        self.savefig(png, format='png', dpi=90, bbox_inches='tight')
        return png.getvalue()


def _with_batch(input_shape):
    shape = tuple(int(s) for s in input_shape)
    return (1,) + shape if len(shape) == 3 else shape


def _format_shape(shape):
    return '(' + ', '.join(str(s) for s in shape) + ')'


def _shortened(name, width=22):
    return name if len(name) <= width else name[:width - 1] + '\u2026'


# ----------------------------------------------------------------- architecture

def plot_architecture(net, input_shape, title=None):
    """One box per top-level block of `net`: its kind, name, output shape and
    parameter count, with arrows in the order data flows.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A (Hybrid)Sequential is drawn child by child; any other block as one box.
        Parameters need not be initialised (shapes are inferred symbolically).
    input_shape : tuple
        With batch, as for `layer_table`; (C, H, W) gets a batch of 1.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Blocks run down columns of up to 9 (of equal length), left to right.
    """
    shape = _with_batch(input_shape)
    rows = layer_table(net, shape)
    blocks = _top_level_blocks(net)
    boxes = [('input', '', _format_shape(shape), None)]
    boxes += [(type(blk).__name__, row.name, _format_shape(row.output_shape), row.params)
              for blk, row in zip(blocks, rows, strict=True)]
    columns = math.ceil(len(boxes) / BLOCKS_PER_COLUMN)
    per_column = math.ceil(len(boxes) / columns)  # columns of equal length
    box_w, box_h, gap_x, gap_y = 3.0, 0.9, 0.9, 0.45
    fig = Picture(figsize=(columns * (box_w + gap_x) * 0.95 + 0.3,
                           per_column * (box_h + gap_y) * 0.72 + (0.8 if title else 0.3)))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.9 if title else 0.98))
    ax.set_xlim(-0.2, columns * (box_w + gap_x) - gap_x + 0.2)
    ax.set_ylim(-(per_column * (box_h + gap_y)) + gap_y - 0.1, 0.1)
    ax.axis('off')
    centres = []
    for index, (kind, name, out_shape, params) in enumerate(boxes):
        column, slot = divmod(index, per_column)
        x0, y0 = column * (box_w + gap_x), -slot * (box_h + gap_y) - box_h
        colour = '#dddddd' if index == 0 else _kind_colour(kind)
        ax.add_patch(FancyBboxPatch((x0, y0), box_w, box_h, boxstyle='round,pad=0.02',
                                    facecolor=colour, edgecolor='#333333', linewidth=0.8))
        head = kind if not name else f'{kind}  {_shortened(name)}'
        ax.text(x0 + box_w / 2, y0 + box_h * 0.68, head, ha='center', va='center',
                fontsize=7.5, fontweight='bold')
        detail = out_shape if params is None else f'{out_shape}   {params:,} params'
        ax.text(x0 + box_w / 2, y0 + box_h * 0.28, detail, ha='center', va='center',
                fontsize=7, family='monospace')
        centres.append((x0, y0))
    for (xa, ya), (xb, yb) in zip(centres, centres[1:]):
        start = (xa + box_w / 2, ya) if xb == xa else (xa + box_w, ya + box_h / 2)
        end = (xb + box_w / 2, yb + box_h) if xb == xa else (xb, yb + box_h / 2)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle='-|>', mutation_scale=9,
                                     color='#333333', linewidth=0.8,
                                     connectionstyle='arc3' if xb == xa else 'arc3,rad=-0.15'))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _kind_colour(kind):
    """Pooling green, normalisation yellow, the classifier's layers red, the rest blue."""
    if 'Pool' in kind:
        return '#d9ead3'
    if 'Norm' in kind:
        return '#fff2cc'
    if kind in ('Dense', 'Flatten', 'Dropout'):
        return '#f4cccc'
    return '#cfe2f3'


# ----------------------------------------------------------------- filters

def _first_conv(net):
    convs = []
    net.apply(lambda blk: convs.append(blk) if isinstance(blk, mx.gluon.nn.Conv2D) else None)
    if not convs:
        raise ValueError(f'{net.name} has no Conv2D layer, so it has no filters to show')
    return convs[0]


def _weights(block):
    # oneDNN may still be reordering the weight in place after a forward pass in
    # training mode, and asnumpy() can read it half-reordered (apache/mxnet#15555)
    mx.nd.waitall()
    try:
        return block.weight.list_data()[0].asnumpy()
    except (RuntimeError, mx.gluon.parameter.DeferredInitializationError):
        raise ValueError(f'{block.name} has no weights yet: initialise the net and run it '
                         f'on one batch before plotting its filters') from None


def _normalised(array):
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _grid(count, max_columns=8):
    columns = min(max_columns, max(1, math.ceil(math.sqrt(count))))
    return math.ceil(count / columns), columns


def plot_filters(net, max_filters=32):
    """The kernels of the first Conv2D layer of `net`, each scaled to its own
    [min, max]: in colour when the layer reads 3 channels, else the first
    input channel in grey."""
    conv = _first_conv(net)
    weight = _weights(conv)
    count = min(int(max_filters), weight.shape[0])
    rows, columns = _grid(count)
    fig = Picture(figsize=(columns * 0.9, rows * 0.9 + 0.4))
    colour = weight.shape[1] == 3
    for i in range(count):
        ax = fig.add_subplot(rows, columns, i + 1)
        kernel = weight[i].transpose(1, 2, 0) if colour else weight[i, 0]
        ax.imshow(_normalised(kernel), cmap=None if colour else 'gray',
                  interpolation='nearest')
        ax.set_xticks([])
        ax.set_yticks([])
    shown = 'RGB' if colour else 'input channel 0'
    fig.suptitle(f'{conv.name}: {count} of {weight.shape[0]} filters '
                 f'{weight.shape[2]}x{weight.shape[3]} ({shown})', fontsize=9)
    return fig


# ----------------------------------------------------------------- feature maps

def plot_feature_maps(net, image, max_maps=6):
    """Run `image` (an NDArray (1, C, H, W) on the net's context) through the
    top-level blocks of `net` one by one and show the first `max_maps`
    channels of each 4-D output, one row per block (the input first)."""
    x = image if image.ndim == 4 else image.expand_dims(axis=0)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f'image has shape {image.shape}; give one image as (1, C, H, W)')
    rows = [('input', x)]
    with mx.autograd.predict_mode():
        for blk in _top_level_blocks(net):
            x = blk(x)
            if x.ndim == 4:
                rows.append((blk.name, x))
    columns = max(min(int(max_maps), out.shape[1]) for _, out in rows)
    fig = Picture(figsize=(1.3 * columns + 1.6, 1.3 * len(rows)))
    for r, (name, out) in enumerate(rows):
        maps = out[0].asnumpy()
        for c in range(min(columns, maps.shape[0])):
            ax = fig.add_subplot(len(rows), columns, r * columns + c + 1)
            ax.imshow(_normalised(maps[c]), cmap='viridis', interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f'{_shortened(name, 16)}\n{maps.shape[0]}x{maps.shape[1]}'
                              f'x{maps.shape[2]}', fontsize=7)
    fig.suptitle(f'feature maps: the first {columns} channels after each block', fontsize=9)
    return fig


# ----------------------------------------------------------------- test-set errors

def _first_context(ctx):
    return ctx[0] if isinstance(ctx, (list, tuple)) else ctx


def _as_image(x):
    """(C, H, W) float array -> H x W (one channel) or H x W x C."""
    return x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)


def _scan(net, data_iter, ctx, num_classes, k):
    """One pass over `data_iter`: the confusion matrix and the `k` surest wrong
    predictions; `num_classes` None takes the width of the net's output."""
    ctx = _first_context(ctx)
    matrix, worst = None, []
    for X, y in data_iter:
        with mx.autograd.predict_mode():
            probs = nd.softmax(net(X.as_in_context(ctx)), axis=1).asnumpy()
        labels = y.asnumpy().astype(np.int64)
        predicted = probs.argmax(axis=1)
        if matrix is None:
            num_classes = num_classes or probs.shape[1]
            matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        if probs.shape[1] != num_classes or labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f'the net predicts {probs.shape[1]} classes and the labels run '
                             f'{labels.min()}..{labels.max()}; both must fit num_classes='
                             f'{num_classes}')
        np.add.at(matrix, (labels, predicted), 1)
        wrong = np.flatnonzero(predicted != labels)
        confidence = probs[wrong, predicted[wrong]]
        surest = wrong[np.argsort(-confidence, kind='stable')[:k]]
        if len(surest):
            images = X[nd.array(surest, ctx=X.context)].asnumpy()
            worst += [Misclassified(_as_image(img), int(labels[i]), int(predicted[i]),
                                    float(probs[i, predicted[i]]))
                      for img, i in zip(images, surest, strict=True)]
            worst = sorted(worst, key=lambda m: -m.confidence)[:k]
    if matrix is None:
        raise ValueError('the data iterator gave no batches')
    return matrix, worst


def confusion_matrix(net, data_iter, ctx, num_classes=10):
    """Counts of (true label, predicted label) over `data_iter`: an int64 array,
    rows the true labels, columns the predictions (its sum is the number of examples)."""
    return _scan(net, data_iter, ctx, num_classes, 0)[0]


def worst_misclassified(net, data_iter, ctx, k=16, num_classes=10):
    """The `k` wrong predictions with the highest softmax probability on the
    predicted (wrong) class, surest first, as `Misclassified(image, label,
    predicted, confidence)` with the image a NumPy array H x W or H x W x C."""
    return _scan(net, data_iter, ctx, num_classes, k)[1]


def _class_names(class_names, count):
    if class_names is None:
        return [str(i) for i in range(count)]
    if len(class_names) < count:
        raise ValueError(f'{len(class_names)} class names for {count} classes')
    return list(class_names)


def plot_confusion_matrix(matrix, class_names=None):
    """Draw a confusion matrix: counts in each cell, coloured by the fraction of
    the true class (row), so small classes read as well as large ones."""
    matrix = np.asarray(matrix)
    names = _class_names(class_names, matrix.shape[0])
    totals = matrix.sum(axis=1, keepdims=True)
    fractions = matrix / np.maximum(totals, 1)
    fig = Picture(figsize=(6.4, 5.6))
    ax = fig.add_subplot()
    ax.imshow(fractions, cmap='Blues', vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha='center', va='center', fontsize=7,
                    color='white' if fractions[i, j] > 0.5 else 'black')
    ticks = range(matrix.shape[0])
    ax.set_xticks(ticks, names[:matrix.shape[0]], rotation=45, ha='right', fontsize=8)
    ax.set_yticks(ticks, names[:matrix.shape[0]], fontsize=8)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else float('nan')
    ax.set_title(f'{total:,} test images, accuracy {accuracy:.3f}', fontsize=9)
    fig.tight_layout()
    return fig


def plot_misclassified(examples, class_names=None):
    """A grid of `Misclassified` examples, each titled with its true label and
    the prediction's label and probability."""
    count = len(examples)
    rows, columns = _grid(max(count, 1))
    fig = Picture(figsize=(columns * 1.5, rows * 1.75 + 0.3))
    if not count:
        fig.text(0.5, 0.5, 'no misclassified images', ha='center', va='center')
        return fig
    top = max(max(m.label, m.predicted) for m in examples) + 1
    names = _class_names(class_names, top)
    for i, m in enumerate(examples):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(np.clip(m.image, 0, 1), cmap='gray' if m.image.ndim == 2 else None)
        ax.set_title(f'true: {names[m.label]}\npred: {names[m.predicted]} '
                     f'{m.confidence:.0%}', fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle('the surest wrong predictions', fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------- a run's pictures

def save_run_pictures(net, test_iter, ctx, out_dir, input_shape, class_names=None):
    """Write architecture.png, filters.png, feature_maps.png (of the first test
    image), confusion.png and misclassified.png into `out_dir` for a trained
    `net`; one pass over `test_iter`. `input_shape` None draws the architecture
    on one test image's shape. Returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    ctx = _first_context(ctx)
    first_batch, _ = next(iter(test_iter))
    input_shape = (1,) + first_batch.shape[1:] if input_shape is None else input_shape
    matrix, worst = _scan(net, test_iter, ctx, None, 16)
    figures = (plot_architecture(net, input_shape),
               plot_filters(net),
               plot_feature_maps(net, first_batch[:1].as_in_context(ctx)),
               plot_confusion_matrix(matrix, class_names),
               plot_misclassified(worst, class_names))
    paths = []
    for name, fig in zip(PICTURE_FILES, figures, strict=True):
        path = os.path.join(out_dir, name)
        save_figure(fig, path, dpi=110)
        paths.append(path)
    return paths
