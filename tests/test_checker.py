"""The behavioural checker: right answers written any way pass, typical
mistakes fail with the first place they go wrong, and student code that
raises or loops becomes a one-line verdict."""
import time

import numpy as np
from mxnet import nd
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent

from d2lnets.classroom.checker import CheckResult, check_assignment, check_builder, close, judge
from d2lnets.classroom.observe import fit_problem, observe, returned
from d2lnets.models.googlenet import Inception
from d2lnets.models.resnet import Residual
from d2lnets.models.vgg import vgg_block

SHAPE = (1, 3, 16, 16)


def vgg(*layers):
    blk = nn.HybridSequential()
    blk.add(*layers)
    return blk


def conv(channels=8, padding=1, kernel=3, activation='relu', **kwargs):
    return nn.Conv2D(channels, kernel_size=kernel, padding=padding, activation=activation,
                     **kwargs)


def pool():
    return nn.MaxPool2D(pool_size=2, strides=2)


def check(block):
    return check_assignment(block, vgg_block(2, 8), SHAPE)


def test_the_reference_and_equivalent_writings_pass():
    assert check(vgg_block(2, 8)).passed
    assert check(vgg(vgg(conv(), conv()), pool())).passed      # nested differently
    separate = vgg(conv(activation=None), nn.Activation('relu'),
                   conv(activation=None), nn.Activation('relu'), pool())
    result = check(separate)
    assert result.passed, result.message
    assert result.message == ('right: the same output as the reference on a seeded input '
                              '(1x8x8x8, through 3 layers)')


def test_wrong_activation_and_wrong_pooling():
    sigmoid = check(vgg(conv(activation='sigmoid'), conv(activation='sigmoid'),
                        nn.AvgPool2D(pool_size=2, strides=2)))
    assert not sigmoid.passed
    assert sigmoid.message == 'layer 1 (convolution): expected relu activation, yours has sigmoid'
    average = check(vgg(conv(), conv(), nn.AvgPool2D(pool_size=2, strides=2)))
    assert average.message == 'layer 3: expected max pooling, yours is average pooling'
    no_relu = check(vgg(conv(), conv(activation=None), pool()))
    assert no_relu.message == 'layer 2 (convolution): expected relu activation, yours has none'


def test_missing_padding_names_the_layer_and_the_fix():
    result = check(vgg(conv(padding=0), conv(), pool()))
    assert not result.passed
    assert result.message == ('layer 1 (convolution): your output is 1x8x14x14, expected '
                              '1x8x16x16: did you forget padding=1?')


def test_missing_and_extra_layers():
    assert check(vgg(conv(), conv())).message == (
        'your block has 2 layers, expected 3: layer 3 (max pooling, output 1x8x8x8) is missing')
    assert check(vgg(conv(), conv(), pool(), nn.MaxPool2D())).message.endswith(
        'layer 4 (max pooling) is extra')
    # a dropout does nothing in prediction: not a difference
    assert check(vgg(conv(), conv(), nn.Dropout(0.5), pool())).passed


def test_parameters_that_do_not_line_up():
    result = check(vgg(conv(use_bias=False), conv(), pool()))
    assert not result.passed
    assert result.message == ('layer 1 (convolution): your parameters have shapes 8x3x3x3, '
                              'expected 8x3x3x3, 8: did you turn its bias off (use_bias=False)?')
    wide = check(vgg(conv(channels=16), conv(), pool()))
    assert wide.message == ('layer 1 (convolution): your parameters have shapes 16x3x3x3, 16, '
                            'expected 8x3x3x3, 8: check its number of channels')


def test_student_code_that_raises_or_loops_becomes_one_line():
    class Broken(nn.HybridBlock):
        def hybrid_forward(self, F, x):
            return x.reshape((7, 7))

    def looping(num_convs, num_channels):
        while True:
            pass

    result = check(Broken())
    assert not result.passed and '\n' not in result.message
    assert result.message == ('your block raised ValueError: Cannot reshape array of size 768 '
                              'into shape (7, 7)')
    too_big = check(vgg(conv(kernel=40, padding=0), conv(), pool()))
    assert not too_big.passed and '\n' not in too_big.message
    assert too_big.message.startswith('your block raised ') and 'kernel size' in too_big.message
    start = time.time()
    result = check_builder(looping, vgg_block, (2, 8), SHAPE, timeout=1)
    assert time.time() - start < 10
    assert result.message == ('looping did not finish within 1 s: is there a loop that '
                              'never ends?')


class BookResidual(nn.Block):
    """The book's Residual, an imperative nn.Block with another order of layers."""

    def __init__(self, num_channels, use_1x1conv=False, strides=1, combine=None, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=strides)
        self.conv2 = nn.Conv2D(num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2D(num_channels, kernel_size=1, strides=strides)
                      if use_1x1conv else None)
        self.bn1, self.bn2 = nn.BatchNorm(), nn.BatchNorm()
        self.combine = combine or (lambda Y, X: nd.relu(Y + X))

    def forward(self, X):
        Y = nd.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        return self.combine(Y, X)


def test_the_books_residual_passes_and_wrong_sums_fail():
    for args, shape in (((3,), (2, 3, 6, 6)), ((6, True, 2), (2, 3, 8, 8))):
        assert check_assignment(BookResidual(*args), Residual(*args), shape).passed
    no_relu = check_assignment(BookResidual(3, combine=lambda Y, X: Y + X), Residual(3),
                               (2, 3, 6, 6))
    assert no_relu.message == ('every layer matches, but your output has negative numbers '
                               'where the expected one has none: is the ReLU after the sum '
                               '(or at the end) missing?')
    product = check_assignment(BookResidual(3, combine=lambda Y, X: Y * X), Residual(3),
                               (2, 3, 6, 6))
    assert not product.passed
    assert product.message.startswith('every layer matches, but the block\'s output differs')


class MyInception(nn.HybridBlock):
    """An Inception of another class name, paths as attributes, concatenated in `order`."""

    def __init__(self, c1, c2, c3, c4, order=(0, 1, 2, 3), **kwargs):
        super().__init__(**kwargs)
        self.order = order
        self.p1 = nn.Conv2D(c1, 1, activation='relu')
        self.p2a, self.p2b = nn.Conv2D(c2[0], 1), nn.Conv2D(c2[1], 3, padding=1)
        self.p3a, self.p3b = nn.Conv2D(c3[0], 1), nn.Conv2D(c3[1], 5, padding=2)
        self.p4a, self.p4b = nn.MaxPool2D(3, 1, 1), nn.Conv2D(c4, 1)

    def hybrid_forward(self, F, x):
        paths = [self.p1(x), F.relu(self.p2b(F.relu(self.p2a(x)))),
                 F.relu(self.p3b(F.relu(self.p3a(x)))), F.relu(self.p4b(self.p4a(x)))]
        return F.concat(*(paths[i] for i in self.order), dim=1)


def test_inception_judged_by_children_and_outputs_not_class_name():
    args, shape = (4, (3, 6), (2, 5), 3), (1, 4, 8, 8)
    assert check_assignment(MyInception(*args), Inception(*args), shape).passed
    concurrent = HybridConcurrent(axis=1)        # the library's structure, built by hand
    concurrent.add(*Inception(*args)._children.values())
    assert check_assignment(concurrent, Inception(*args), shape).passed
    swapped = check_assignment(MyInception(*args, order=(1, 0, 2, 3)), Inception(*args), shape)
    assert swapped.message == ('your output has the right channels in another order: check '
                               'the order in which you concatenate the paths')


class Returning(nn.HybridBlock):
    """vgg_block(2, 8)'s layers, returning `shape(output)` from its forward."""

    def __init__(self, shape, **kwargs):
        super().__init__(**kwargs)
        self.shape = shape
        self.body = vgg(conv(), conv(), pool())

    def hybrid_forward(self, F, x):
        return self.shape(self.body(x))


def test_everything_the_block_returns_is_judged():
    assert check(Returning(lambda out: out)).passed
    cases = {'your block returned a tuple of 2 arrays, expected one array':
             lambda out: (out, out * 0),
             'your block returned a list of 1 array, expected one array': lambda out: [out],
             'your block returned an object of type dict, expected one array':
             lambda out: {'out': out}}
    for message, shape in cases.items():
        result = check(Returning(shape))
        assert not result.passed and result.message == message


def test_a_batch_norm_that_agrees_passes_naming_each_result_and_no_layers():
    def build():
        return nn.BatchNorm(in_channels=3)

    reference = observe(build, (), (4, 3, 5, 5), 'batch_norm')
    student = observe(build, (), (4, 3, 5, 5), 'batch_norm', reference)
    assert judge(reference, student) == CheckResult(
        True, 'right: the same output in training, moving mean after a training step, moving '
              'variance after a training step, output in prediction as the reference on a '
              'seeded input (4x3x5x5)')


def observation(outputs, returned=('array', 1), param_problem=None):
    """An observation of a block without layers (as a batch normalisation's)."""
    return {'weights': [np.ones(3, np.float32)] * 4, 'layout': [], 'steps': [],
            'param_problem': param_problem, 'returned': list(returned), 'outputs': outputs}


def test_each_failing_verdict_is_false_and_says_what_differs():
    want = np.zeros((4, 3), np.float32)
    reference = observation([['output in training', want]])
    cases = [
        (observation([], param_problem=[['batch norm', [[2], [2]]]]),
         'expected 4 parameters (gamma, beta, moving mean, moving variance) of 3 numbers '
         'each, got 2, 2'),
        (observation([], param_problem=[['BatchNorm layer', [[1, 2, 1, 1]]]]),
         'expected 4 parameters (gamma, beta, moving mean, moving variance) of 3 numbers '
         'each, got 1x2x1x1'),
        (observation([], param_problem=[['BatchNorm layer', []]]),
         'expected 4 parameters (gamma, beta, moving mean, moving variance) of 3 numbers '
         'each, got none'),
        (observation([['output in training', want.T]]),
         'your output in training is 3x4, expected 4x3'),
        (observation([['output in training', want + 0.5]]),
         'output in training: your numbers differ from the expected ones by up to 0.5 (your '
         'mean 0.5, expected 0)'),
        # results that do not match what the block returned (a forged observation) fail
        (observation([]), 'your results are 0 arrays, expected 1 (output in training)')]
    for student, message in cases:
        assert judge(reference, student) == CheckResult(False, message)
    pair = observation([['output 1', want], ['output 2', want]], returned=('tuple', 2))
    assert judge(pair, observation([['output 1', want]], returned=('tuple', 2))) == CheckResult(
        False, 'your results are 1 arrays, expected 2 (output 1, output 2)')


def test_close_is_within_1e_4_of_one_plus_the_largest_expected_number():
    assert close(np.array([1e-4]), np.array([0.0]))        # the bound itself is close
    assert not close(np.array([1.5e-4]), np.array([0.0]))
    assert close(np.array([3.0003, -1.0]), np.array([3.0, -1.0]))
    assert not close(np.array([3.0005, -1.0]), np.array([3.0, -1.0]))
    assert not close(np.zeros((2, 3)), np.zeros((3, 2)))


def test_a_block_is_checked_within_the_time_limit_given():
    start = time.monotonic()

    class Looping(nn.Block):
        def forward(self, x):
            while time.monotonic() < start + 6:   # ends, so that a run without the limit fails
                pass
            return x

    result = check_assignment(Looping(), vgg_block(2, 8), SHAPE, timeout=0.5)
    assert time.monotonic() - start < 5
    assert result == CheckResult(False, 'your block did not finish within 0.5 s: is there a '
                                        'loop that never ends?')


def test_student_code_without_a_name_is_called_your_code():
    class Builder:
        def __call__(self, num_convs, num_channels):
            raise ValueError('not written yet')

    assert check_builder(Builder(), vgg_block, (2, 8), SHAPE) == CheckResult(
        False, 'your code raised ValueError: not written yet')


def step(kind, shape, values=None, activation=None, **detail):
    values = np.zeros(shape) if values is None else np.array(values)
    return {'kind': kind, 'detail': detail, 'activation': activation, 'shape': list(shape),
            'values': values.astype(np.float32)}


def layered(steps, output):
    """An observation of a block with these layers (`step`s) returning `output`."""
    return {'weights': [], 'layout': [], 'param_problem': None, 'steps': steps,
            'returned': ['array', 1], 'outputs': [['output', np.array(output, np.float32)]]}


def test_a_layer_of_the_wrong_shape_gets_the_hint_its_kind_calls_for():
    cases = [
        ('convolution', (1, 8, 16, 16), (1, 6, 16, 16), dict(pad=[1, 1], stride=[1, 1]),
         ': check the number of output channels'),
        ('convolution', (1, 8, 16, 12), (1, 8, 14, 10), dict(pad=[0, 0], stride=[1, 1]),
         ': did you forget padding=1?'),          # the height's, not the width's
        ('convolution', (1, 8, 16, 16), (1, 8, 14, 16), dict(pad=[0, 1], stride=[1, 1]),
         ': did you forget padding=1?'),
        ('convolution', (1, 8, 16, 16), (1, 8, 18, 18), dict(pad=[2, 2], stride=[1, 1]),
         ': check the padding'),
        ('convolution', (1, 8, 16, 16), (1, 8, 16, 14), dict(pad=[1, 0], stride=[1, 1]),
         ': check the padding'),
        ('convolution', (1, 8, 16, 16), (1, 8, 8, 8), dict(pad=[1, 1], stride=[2, 2]), ''),
        ('max pooling', (1, 4, 8, 8), (1, 4, 6, 6), dict(pad=[0, 0], stride=[1, 1]),
         ': check the pooling\'s size, strides and padding')]
    for kind, want, got, detail, hint in cases:
        reference = layered([step(kind, want, pad=[1, 1], stride=[1, 1])], np.zeros(want))
        student = layered([step(kind, got, **detail)], np.zeros(got))
        assert judge(reference, student) == CheckResult(
            False, f'layer 1 ({kind}): your output is {"x".join(map(str, got))}, expected '
                   f'{"x".join(map(str, want))}{hint}')


def test_wrong_numbers_are_put_down_to_the_first_layer_that_explains_them():
    first, second = [[-1.0, 2.0]], [[0.5, 1.0]]
    reference = [step('convolution', (1, 2), first), step('convolution', (1, 2), second)]
    # a ReLU the reference's layer lacks (it may come later, in its forward): not by itself
    # a difference
    with_relu = step('convolution', (1, 2), [[0.0, 2.0]], 'relu')
    cases = [
        ([with_relu, step('convolution', (1, 2), second)], [[1.5, 3.5]],
         'every layer matches, but the block\'s output differs (by up to 1.5): check how your '
         'forward combines them, e.g. the sum with the shortcut'),
        ([with_relu, step('convolution', (1, 2), [[9.0, 9.0]])], [[1.5, 3.5]],
         'layer 2 (convolution): right shape, wrong numbers: check its settings and what you '
         'feed it'),
        ([step('convolution', (1, 2), [[0.27, 0.88]], 'sigmoid')], [[1.5, 3.5]],
         'layer 1 (convolution): expected no activation, yours has sigmoid'),
        # equal only once a ReLU is applied to both: the leaky ReLU is the difference
        ([step('convolution', (1, 2), [[-0.25, 2.0]], 'leaky relu'), reference[1]], [[1.5, 3.5]],
         'layer 1 (convolution): expected no activation, yours has leaky relu'),
        (reference + [step('batch norm', (1, 2))], [[1.5, 3.5]],
         'your block has 3 layers, expected 2: layer 3 (batch norm) is extra'),
        (reference, [[2.0, 1.0]], 'your output has the right channels in another order: check '
                                  'the order in which you concatenate the paths')]
    for steps, output, message in cases:
        assert judge(layered(reference, [[1.0, 2.0]]), layered(steps, output)) == CheckResult(
            False, message)
    # an output without channels (one axis) is never "reordered"
    assert judge(layered(reference, [1.0, 2.0, 3.0]), layered(reference, [3.0, 1.0, 2.0])) == (
        CheckResult(False, 'every layer matches, but the block\'s output differs (by up to 2): '
                           'check how your forward combines them, e.g. the sum with the '
                           'shortcut'))


def test_parameters_that_do_not_fit_are_put_in_words_for_the_first_layer_they_fail():
    conv1, conv2 = [[8, 3, 3, 3], [8]], [[8, 8, 3, 3], [8]]
    cases = [
        ([['convolution', conv1], ['convolution', [[4, 8, 3, 3], [4]]]], conv1 + conv2, [2, 2],
         'layer 2 (convolution): your parameters have shapes 4x8x3x3, 4, expected 8x8x3x3, 8: '
         'check its number of channels'),
        ([['convolution', conv1], ['convolution', conv2]], conv1, [2],     # one layer too many
         'layer 2 (convolution): your parameters have shapes 8x8x3x3, 8, expected none'),
        ([['convolution', [[8, 3, 5, 5], [8]]]], conv1, [2],
         'layer 1 (convolution): your parameters have shapes 8x3x5x5, 8, expected 8x3x3x3, 8'),
        ([['dense layer', [[10, 20]]]], [[10, 20], [10]], [2],
         'layer 1 (dense layer): your parameters have shapes 10x20, expected 10x20, 10: did you '
         'turn its bias off (use_bias=False)?'),
        ([['dense layer', [[2, 6]]]], [[3, 4]], [1],      # as many numbers, other shape
         'layer 1 (dense layer): your parameters have shapes 2x6, expected 3x4: check its '
         'number of channels'),
        ([['max pooling', []]], conv1, [2],
         'layer 1 (max pooling): your parameters have shapes none, expected 8x3x3x3, 8'),
        ([['batch norm', [[3]]]], [[3]] * 4, [4],
         'layer 1 (batch norm): your parameters have shapes 3, expected 3, 3, 3, 3'),
        # every layer fits (a shape of 1s around the same numbers too), but some are missing
        ([['convolution', [[8, 3, 3, 3], [1, 8, 1, 1]]]], conv1 + conv2, [2, 2],
         'your layers have other parameters than the reference\'s: expected 8x3x3x3, 8, '
         '8x8x3x3, 8')]
    for layers, weights, layout, message in cases:
        assert fit_problem(layers, weights, layout) == message


def test_what_a_forward_returned_is_recorded_with_each_array_named():
    one, two = nd.array([1, 2]), nd.array([[3]])
    shape, outputs = returned([one, two])
    assert shape == ['list', 2]
    assert [name for name, _ in outputs] == ['output 1', 'output 2']
    assert outputs[1][1].tolist() == [[3.0]]
    assert returned(None) == (['other', 'NoneType'], [])
    assert returned((one, 'text')) == (['other', 'tuple'], [])


def test_each_layer_is_observed_with_its_kind_settings_and_activation():
    def build():
        blk = nn.HybridSequential()
        blk.add(nn.Conv2D(2, kernel_size=3, padding=1), nn.LeakyReLU(0.1),
                nn.HybridLambda(lambda F, x: 2 * x))
        return blk

    steps = observe(build, (), (1, 3, 4, 4), 'block')['steps']
    assert [(s['kind'], s['detail'], s['activation'], s['shape']) for s in steps] == [
        ('convolution', {'kernel': [3, 3], 'pad': [1, 1], 'stride': [1, 1]}, 'leaky relu',
         [1, 2, 4, 4]),
        ('HybridLambda layer', {}, None, [1, 2, 4, 4])]


def test_a_student_whose_parameters_do_not_fit_is_observed_without_running_it_further():
    reference = observe(vgg_block, (2, 8), SHAPE, 'block')
    seen = observe(lambda: vgg(conv(use_bias=False), conv(), pool()), (), SHAPE, 'block',
                   reference)
    assert seen['weights'] is reference['weights']
    assert (seen['layout'], seen['param_problem'], seen['returned'], seen['outputs']) == (
        [1, 2, 0], [['convolution', [[8, 3, 3, 3]]], ['convolution', [[8, 8, 3, 3], [8]]],
                    ['max pooling', []]], ['array', 1], [])
    assert [s['kind'] for s in seen['steps']] == ['convolution', 'convolution', 'max pooling']


def test_a_batch_norm_that_does_not_fit_or_returns_two_arrays_is_observed_as_such():
    class Twice(nn.BatchNorm):
        def forward(self, x):
            out = super().forward(x)
            return out, out

    reference = observe(lambda: nn.BatchNorm(in_channels=3), (), (4, 3, 5, 5), 'batch_norm')
    for build, returned_, problem in (
            (nn.LayerNorm, ['array', 1], [['batch norm', [[5], [5]]]]),
            # two parameters that fit, two lacking
            (lambda: nn.LayerNorm(axis=1), ['array', 1], [['batch norm', [[3], [3]]]]),
            (Twice, ['tuple', 2], None)):
        seen = observe(build, (), (4, 3, 5, 5), 'batch_norm', reference)
        assert seen['weights'] is reference['weights']
        assert {key: value for key, value in seen.items() if key != 'weights'} == {
            'layout': [], 'steps': [], 'returned': returned_, 'outputs': [],
            'param_problem': problem}


def test_a_batch_norm_whose_parameters_do_not_fit_is_judged_against_the_real_reference():
    """The whole path, the fork included: a layer norm (two parameters, not
    four) handed in for batch normalisation is named, not a KeyError."""
    def layer_norm(num_features, num_dims):
        return nn.LayerNorm(axis=1, in_channels=num_features)

    def concise(num_features, num_dims):
        return nn.BatchNorm(in_channels=num_features)
    result = check_builder(layer_norm, concise, (3, 4), (4, 3, 5, 5), kind='batch_norm')
    assert result == CheckResult(False, 'expected 4 parameters (gamma, beta, moving mean, moving '
                                        'variance) of 3 numbers each, got 3, 3')
