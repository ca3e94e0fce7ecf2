"""The assignment checker on a correct answer and on typical wrong ones ("write vgg_block")."""
from mxnet.gluon import nn

from d2lnets.classroom.checker import check_assignment, describe_layers, leaf_layers
from d2lnets.models.vgg import vgg_block

SHAPE = (1, 64, 112, 112)


def reference():
    return vgg_block(2, 128)


def student(*layers):
    blk = nn.HybridSequential()
    blk.add(*layers)
    return blk


def conv(channels=128, padding=1, kernel=3, **kwargs):
    return nn.Conv2D(channels, kernel_size=kernel, padding=padding, activation='relu', **kwargs)


def pool(**kwargs):
    return nn.MaxPool2D(pool_size=2, strides=2, **kwargs)


def test_a_correct_answer_passes_even_when_nested_differently():
    inner = student(conv(), conv())
    result = check_assignment(student(inner, pool()), reference(), SHAPE)
    assert result.ok and result.message.startswith('all 3 layers match')


def test_missing_padding():
    result = check_assignment(student(conv(padding=0), conv(), pool()), reference(), SHAPE)
    assert not result.ok
    assert result.message == ('layer 1 (conv): expected output (1, 128, 112, 112), '
                              'got (1, 128, 110, 110)')


def test_forgotten_pooling():
    result = check_assignment(student(conv(), conv()), reference(), SHAPE)
    assert result.message == ('expected 3 layers, got 2: layer 3 (pool, output '
                              '(1, 128, 56, 56)) is missing')


def test_pooling_in_the_wrong_place():
    result = check_assignment(student(conv(), pool(), conv()), reference(), SHAPE)
    assert result.message == 'layer 2: expected a conv layer, got pool'


def test_wrong_stride_in_the_pooling():
    result = check_assignment(student(conv(), conv(), nn.MaxPool2D(pool_size=2, strides=1)),
                              reference(), SHAPE)
    assert result.message == ('layer 3 (pool): expected output (1, 128, 56, 56), '
                              'got (1, 128, 111, 111)')


def test_same_shapes_but_no_bias():
    result = check_assignment(student(conv(use_bias=False), conv(), pool()), reference(), SHAPE)
    assert result.message == 'layer 1 (conv): expected 73,856 parameters, got 73,728'


def test_an_extra_layer():
    result = check_assignment(student(conv(), conv(), pool(), nn.Dropout(0.5)), reference(),
                              SHAPE)
    assert result.message == 'expected 3 layers, got 4: layer 4 (dropout) is extra'


def test_a_layer_that_cannot_run_is_reported_not_raised():
    result = check_assignment(student(conv(kernel=200, padding=0), conv(), pool()), reference(),
                              SHAPE)
    assert not result.ok
    assert result.message.startswith('layer 1 (conv) fails on input of shape (1, 64, 112, 112)')
    assert '\n' not in result.message


def test_leaves_and_descriptions():
    assert [type(b).__name__ for b in leaf_layers(reference())] == ['Conv2D', 'Conv2D',
                                                                    'MaxPool2D']
    layers = describe_layers(reference(), SHAPE)
    assert [layer.params for layer in layers] == [64 * 128 * 9 + 128, 128 * 128 * 9 + 128, 0]
