"""d2lnets.viz.pictures: each picture shows what the net and its data hold,
checked against the same quantities computed here independently."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init, nd
from mxnet.gluon import nn

from d2lnets.data.batches import ImageBatches, load_data_fashion_mnist
from d2lnets.data.fashion_mnist import TEXT_LABELS
from d2lnets.training.loop import evaluate_accuracy, train_ch5
from d2lnets.viz import pictures
from d2lnets.viz.shapes import layer_table

CTX = mx.cpu()


def small_net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(5, kernel_size=3, activation='relu'), nn.MaxPool2D(2),
            nn.Conv2D(8, kernel_size=3, activation='relu'), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dense(10))
    return net


@pytest.fixture(scope='module')
def trained():
    """A seeded small net trained 2 epochs on 1000 images; 300 test images."""
    train_iter, test_iter = load_data_fashion_mnist(100, num_train=1000, num_test=300, seed=0)
    mx.random.seed(0)
    net = small_net()
    net.initialize(init.Xavier(), ctx=CTX)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.2})
    train_ch5(net, train_iter, test_iter, 100, trainer, CTX, 2, log=lambda line: None)
    return net, test_iter


def all_probabilities(net, data_iter):
    probs, labels, images = [], [], []
    for X, y in data_iter:
        probs.append(nd.softmax(net(X)).asnumpy().astype(np.float64))
        labels.append(y.asnumpy().astype(int))
        images.append(X.asnumpy())
    return np.concatenate(probs), np.concatenate(labels), np.concatenate(images)


def test_confusion_matrix_counts_every_test_image_where_it_was_predicted(trained):
    net, test_iter = trained
    matrix = pictures.confusion_matrix(net, test_iter, CTX)
    probs, labels, _ = all_probabilities(net, test_iter)
    expected = np.zeros((10, 10), dtype=np.int64)
    for label, predicted in zip(labels, probs.argmax(axis=1)):
        expected[label, predicted] += 1
    assert matrix.dtype == np.int64 and matrix.sum() == test_iter.num_examples == 300
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(labels, minlength=10))
    assert np.trace(matrix) / 300 == pytest.approx(evaluate_accuracy(test_iter, net, CTX))
    assert 0 < np.trace(matrix) < 300  # the net learned something and still errs


def test_worst_misclassified_are_the_surest_wrong_predictions(trained):
    net, test_iter = trained
    worst = pictures.worst_misclassified(net, test_iter, CTX, k=7)
    probs, labels, images = all_probabilities(net, test_iter)
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind='stable')][:7]
    assert len(worst) == 7
    assert all(m.label != m.predicted for m in worst)
    np.testing.assert_allclose([m.confidence for m in worst], probs[order, predicted[order]],
                               rtol=1e-5)
    for m, i in zip(worst, order):
        assert (m.label, m.predicted) == (labels[i], predicted[i])
        assert m.image.shape == (28, 28)
        np.testing.assert_array_equal(m.image, images[i, 0])


def test_misclassified_grid_shows_only_the_wrong_predictions(trained):
    net, test_iter = trained
    worst = pictures.worst_misclassified(net, test_iter, CTX, k=5)
    fig = pictures.plot_misclassified(worst, TEXT_LABELS)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 5
    for ax, m in zip(axes, worst):
        true, pred = ax.get_title().split('\n')
        assert true == f'true: {TEXT_LABELS[m.label]}' and pred.startswith(
            f'pred: {TEXT_LABELS[m.predicted]} ')
        assert TEXT_LABELS[m.label] != TEXT_LABELS[m.predicted]
    empty = pictures.plot_misclassified([])
    assert not [ax for ax in empty.axes if ax.images]


def test_confusion_plot_shows_the_counts(trained):
    net, test_iter = trained
    matrix = pictures.confusion_matrix(net, test_iter, CTX)
    ax = pictures.plot_confusion_matrix(matrix, TEXT_LABELS).axes[0]
    counts = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text())
              for t in ax.texts}
    assert counts == {(i, j): int(c) for (i, j), c in np.ndenumerate(matrix) if c}
    assert [t.get_text() for t in ax.get_xticklabels()] == list(TEXT_LABELS)


def test_architecture_has_a_box_per_block_with_its_output_shape():
    net = small_net()
    rows = layer_table(net, (1, 1, 28, 28))
    ax = pictures.plot_architecture(net, (1, 28, 28), title='small').axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(ax.patches) == 2 * len(rows) + 1  # boxes (input + blocks) and arrows
    assert texts[0] == 'input' and texts[1] == '(1, 1, 28, 28)'
    for row, head, detail in zip(rows, texts[2::2], texts[3::2]):
        assert head.endswith(row.name)
        shape = '(' + ', '.join(map(str, row.output_shape)) + ')'
        assert detail == f'{shape}   {row.params:,} params'


def test_a_long_architecture_wraps_into_columns():
    net = nn.HybridSequential()
    net.add(*[nn.Activation('relu') for _ in range(24)])
    ax = pictures.plot_architecture(net, (1, 1, 8, 8)).axes[0]
    lefts = sorted({round(p.get_x(), 3) for p in ax.patches if hasattr(p, 'get_x')})
    assert len(lefts) == 3  # 25 boxes, at most 9 per column


def test_filters_are_the_first_convolutions_kernels(trained):
    net, _ = trained
    fig = pictures.plot_filters(net, max_filters=4)
    weight = net[0].weight.data().asnumpy()
    images = [ax.images[0].get_array() for ax in fig.axes]
    assert len(images) == 4
    for image, kernel in zip(images, weight):
        k = kernel[0]
        np.testing.assert_allclose(image, (k - k.min()) / (k.max() - k.min()), rtol=1e-6)


def test_colour_filters_are_drawn_in_rgb():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(3, kernel_size=5, in_channels=3))
    net.initialize(ctx=CTX)
    fig = pictures.plot_filters(net)
    assert [ax.images[0].get_array().shape for ax in fig.axes] == [(5, 5, 3)] * 3


def test_feature_maps_are_the_outputs_of_each_block(trained):
    net, test_iter = trained
    X, _ = next(iter(test_iter))
    image = X[:1]
    fig = pictures.plot_feature_maps(net, image, max_maps=3)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert [label.split('\n')[1] for label in labels] == ['1x28x28', '5x26x26', '5x13x13',
                                                           '8x11x11', '8x5x5']
    first_conv = net[0](image)[0].asnumpy()
    shown = [ax.images[0].get_array() for ax in fig.axes[1:4]]
    for channel, picture in zip(first_conv, shown):
        span = channel.max() - channel.min()
        np.testing.assert_allclose(picture, (channel - channel.min()) / span, atol=1e-6)


def test_save_run_pictures_writes_five_pngs(trained, tmp_path):
    net, test_iter = trained
    paths = pictures.save_run_pictures(net, test_iter, [CTX], str(tmp_path / 'run'),
                                       (1, 1, 28, 28), TEXT_LABELS)
    assert [p.rsplit('/', 1)[1] for p in paths] == list(pictures.PICTURE_FILES)
    for path in paths:
        with open(path, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_a_figure_shows_itself_in_a_notebook():
    fig = pictures.plot_architecture(small_net(), (1, 1, 28, 28))
    assert fig._repr_png_()[:8] == b'\x89PNG\r\n\x1a\n'


def test_bad_input_is_one_clear_error(trained):
    net, test_iter = trained
    with pytest.raises(ValueError, match='initialise the net'):
        pictures.plot_filters(small_net())
    mlp = nn.HybridSequential()
    mlp.add(nn.Dense(10))
    with pytest.raises(ValueError, match='no Conv2D'):
        pictures.plot_filters(mlp)
    with pytest.raises(ValueError, match=r'\(1, C, H, W\)'):
        pictures.plot_feature_maps(net, nd.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match='num_classes=5'):
        pictures.confusion_matrix(net, test_iter, CTX, num_classes=5)
    with pytest.raises(ValueError, match='no batches'):
        pictures.confusion_matrix(net, ImageBatches(np.zeros((0, 28, 28), np.uint8),
                                                    np.zeros(0, np.uint8), 10), CTX)
