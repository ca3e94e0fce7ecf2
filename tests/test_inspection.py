"""Per-layer shapes and parameter counts, checked against real arrays."""
import io

import pytest
from mxnet import init, nd
from mxnet.gluon import nn

from d2lnets.viz.shapes import count_parameters, layer_table, print_layer_shapes
from d2lnets.models.batchnorm import lenet_bn, lenet_bn_scratch
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg


def initialised_net(batch_norm):
    net = vgg(narrow(CONV_ARCHS['A'], 8), fc_units=100, batch_norm=batch_norm)
    net.initialize(init.Xavier())
    net(nd.zeros((1, 1, 64, 64)))
    return net


def test_counts_equal_the_real_parameter_arrays():
    for batch_norm in (False, True):
        net = initialised_net(batch_norm)
        params = net.collect_params().values()
        assert count_parameters(net, (1, 1, 64, 64)) == sum(p.data().size for p in params)
        assert count_parameters(net, (1, 1, 64, 64), trainable_only=True) == sum(
            p.data().size for p in params if p.grad_req != 'null')


def test_shapes_equal_a_real_forward_pass_hybridized_or_not():
    for hybridize in (False, True):
        net = initialised_net(batch_norm=False)
        if hybridize:
            net.hybridize()
            net(nd.zeros((2, 1, 64, 64)))
        X, shapes = nd.zeros((2, 1, 64, 64)), []
        for blk in net:
            X = blk(X)
            shapes.append(X.shape)
        assert [r.output_shape for r in layer_table(net, (2, 1, 64, 64))] == shapes


def test_printout_is_the_books_format_plus_parameters():
    out = io.StringIO()
    net = vgg(CONV_ARCHS['A'])
    rows = layer_table(net, (1, 1, 224, 224))
    assert print_layer_shapes(net, (1, 1, 224, 224), file=out) is None  # a cell shows it once
    lines = out.getvalue().splitlines()
    assert len(lines) == len(rows) + 1
    assert lines[0].split() == [rows[0].name, 'output', 'shape:', '(1,', '64,', '112,', '112)',
                                'params:', '640']
    assert lines[-1].split()[-1] == f'{sum(r.params for r in rows):,}' == '128,806,154'


def test_printout_columns_line_up_with_spaces():
    """Short and long shapes and counts, as in the book's LeNet: every column starts
    (names, shapes) or ends (counts) at the same place in every row."""
    out = io.StringIO()
    print_layer_shapes(lenet_bn(), (1, 1, 28, 28), file=out)
    text = out.getvalue()
    lines = text.splitlines()
    assert '\t' not in text
    assert len({line.index('output shape:') for line in lines[:-1]}) == 1
    assert len({line.index('params:') for line in lines[:-1]}) == 1
    assert len({len(line) for line in lines}) == 1
    assert lines[0].split('output shape:')[1].split('params:')[0].strip() == '(1, 6, 24, 24)'


def test_an_imperative_block_gets_its_shapes_from_a_forward_pass_once_initialised():
    net = lenet_bn_scratch()
    with pytest.raises(ValueError, match='imperative Block.*initialise the net first'):
        layer_table(net, (1, 1, 28, 28))
    net.initialize()
    net(nd.zeros((1, 1, 28, 28)))  # completes the deferred initialisation
    before = [p.data().asnumpy().copy() for p in net.collect_params().values()]
    columns = [row[1:] for row in layer_table(net, (2, 1, 28, 28))]
    assert columns == [row[1:] for row in layer_table(lenet_bn(), (2, 1, 28, 28))]
    after = [p.data().asnumpy() for p in net.collect_params().values()]
    assert all((a == b).all() for a, b in zip(before, after))  # moving statistics unchanged


def test_input_too_small_is_a_clear_error():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=5))
    try:
        layer_table(net, (1, 1, 3, 3))
    except ValueError as err:
        assert 'does not accept input of shape (1, 1, 3, 3)' in str(err)
        assert '\n' not in str(err)
    else:
        raise AssertionError('expected a ValueError')


def test_a_plain_block_is_one_row():
    rows = layer_table(nn.Dense(5, in_units=3), (2, 3))
    assert rows[0].output_shape == (2, 5) and rows[0].params == 20
