"""Judge a student's block by what it computes, against the library's reference.

Both blocks run on the same seeded input with the same weights (the
reference's, copied into the student's block in the order its layers run:
`observe`); the verdict is whether the outputs agree within a tolerance. A
block may be built any way -- `Conv2D(activation='relu')` or a Conv2D then an
`Activation`, a custom class of any name, `nn.Block` or `HybridBlock` --
as long as it computes the same function. When it does not, the message
names the first place it goes wrong, in words::

    layer 1 (convolution): your output is 1x8x14x14, expected 1x8x16x16:
        did you forget padding=1?
    layer 3: expected max pooling, yours is average pooling
    your output has the right channels in another order: check the order in
        which you concatenate the paths

Student code runs under `limits.run_limited` (a time limit, and one line for
anything it raises); the judging itself runs only library code on plain
observations, so the grader judges in its own process what a sandboxed
submission observed (`received` checks those first).
"""
from collections import namedtuple

import numpy as np

from .limits import DEFAULT_TIMEOUT, StudentCodeError, run_limited
from .observe import fit_problem, observe, returned_words

CheckResult = namedtuple('CheckResult', 'passed message')


def check_assignment(student_block, reference_block, input_shape, timeout=DEFAULT_TIMEOUT):
    """Compare the built `student_block` with `reference_block` on a seeded
    input of `input_shape` (with batch); return a `CheckResult`."""
    return check_builder(lambda: student_block, lambda: reference_block, (), input_shape,
                         timeout=timeout, what='your block')


def check_builder(student, reference, args, input_shape, kind='block',
                  timeout=DEFAULT_TIMEOUT, what=None):
    """Build `student(*args)` and `reference(*args)` and compare them on a
    seeded input of `input_shape`; `kind` is 'block' or 'batch_norm'."""
    what = what or getattr(student, '__name__', 'your code')
    reference_seen = observe(reference, args, input_shape, kind)
    try:
        student_seen = run_limited(observe, student, args, input_shape, kind,
                                   reference_seen, timeout=timeout, what=what)
    except StudentCodeError as err:
        return CheckResult(False, str(err))
    return judge(reference_seen, student_seen)


def close(got, want):
    """Equal within float32 rounding over a few layers."""
    return got.shape == want.shape and bool(
        np.abs(got - want).max(initial=0) <= 1e-4 * (1 + np.abs(want).max(initial=0)))


def _size(shape):
    return 'x'.join(map(str, shape))


def judge(reference, student):
    """A `CheckResult` for a student's observation against the reference's:
    it passes only if the block returned what the reference returns and
    every output agrees."""
    if student['param_problem'] is not None:
        return CheckResult(False, _param_words(reference, student['param_problem']))
    if student['returned'] != reference['returned']:
        return CheckResult(False, f'your block returned {returned_words(student["returned"])}'
                                  f', expected {returned_words(reference["returned"])}')
    names = [name for name, _ in reference['outputs']]
    if [name for name, _ in student['outputs']] != names:
        return CheckResult(False, f'your results are {len(student["outputs"])} arrays, '
                                  f'expected {len(names)} ({", ".join(names)})')
    steps = len(reference['steps'])
    for (name, want), (_, got) in zip(reference['outputs'], student['outputs']):
        if got.shape != want.shape:
            return CheckResult(False, _wrong_shape(reference, student, name, got, want))
        if not close(got, want):
            return CheckResult(False, _wrong_numbers(reference, student, name, got, want))
    size = _size(reference['outputs'][0][1].shape)
    layers = f', through {steps} layers' if steps else ''
    return CheckResult(True, f'right: the same {", ".join(names)} as the reference on a '
                             f'seeded input ({size}{layers})')


def _param_words(reference, layers):
    shapes = [w.shape for w in reference['weights']]
    if not reference['layout']:   # a batch normalisation layer, observed whole
        got = [shape for _, layer in layers for shape in layer]
        return (f'expected 4 parameters (gamma, beta, moving mean, moving variance) of '
                f'{reference["weights"][0].size} numbers each, got '
                f'{", ".join("x".join(map(str, s)) for s in got) or "none"}')
    return fit_problem(layers, shapes, reference['layout'])


def _wrong_shape(reference, student, name, got, want):
    for number, (ref, mine) in enumerate(zip(reference['steps'], student['steps']), 1):
        if ref['shape'] != mine['shape']:
            return (f'layer {number} ({mine["kind"]}): your output is {_size(mine["shape"])}, '
                    f'expected {_size(ref["shape"])}{_shape_hint(ref, mine)}')
    counted = _layer_count(reference['steps'], student['steps'])
    if counted:
        return counted
    return f'your {name} is {_size(got.shape)}, expected {_size(want.shape)}'


def _shape_hint(ref, mine):
    if mine['shape'][1] != ref['shape'][1]:
        return ': check the number of output channels'
    detail = mine['detail']
    if mine['kind'] == 'convolution' and detail.get('stride') == [1, 1]:
        missing = ref['shape'][2] - mine['shape'][2]
        if missing > 0 and missing % 2 == 0:
            return f': did you forget padding={detail["pad"][0] + missing // 2}?'
        return ': check the padding'
    if 'pooling' in mine['kind']:
        return ': check the pooling\'s size, strides and padding'
    return ''


def _layer_count(ref_steps, my_steps):
    if len(my_steps) < len(ref_steps):
        missing = ref_steps[len(my_steps)]
        return (f'your block has {len(my_steps)} layers, expected {len(ref_steps)}: layer '
                f'{len(my_steps) + 1} ({missing["kind"]}, output {_size(missing["shape"])}) '
                f'is missing')
    if len(my_steps) > len(ref_steps):
        extra = my_steps[len(ref_steps)]
        return (f'your block has {len(my_steps)} layers, expected {len(ref_steps)}: layer '
                f'{len(ref_steps) + 1} ({extra["kind"]}) is extra')
    return None


def _relu_equivalent(got, want):
    """Equal once a ReLU is applied to one of them: the same computation with
    its ReLU in another place (an `Activation` block here, `F.relu` later).
    Not when only a ReLU on both makes them equal: a leaky ReLU where the
    reference has none is a wrong activation, not a moved one."""
    return close(np.maximum(got, 0), want) or close(got, np.maximum(want, 0))


def _wrong_numbers(reference, student, name, got, want):
    lacking = None   # the first layer without the ReLU the reference's has there
    for number, (ref, mine) in enumerate(zip(reference['steps'], student['steps']), 1):
        if close(mine['values'], ref['values']):
            lacking = None  # the ReLU was applied after all (F.relu in the forward)
            continue
        if mine['kind'] != ref['kind']:
            return f'layer {number}: expected {ref["kind"]}, yours is {mine["kind"]}'
        if _relu_equivalent(mine['values'], ref['values']):
            if lacking is None and ref['activation'] == 'relu' and mine['activation'] is None:
                lacking = _activation_words(number, ref, mine)
            continue
        if mine['activation'] != ref['activation']:
            return _activation_words(number, ref, mine)
        return lacking or (f'layer {number} ({mine["kind"]}): right shape, wrong numbers: '
                           f'check its settings and what you feed it')
    counted = _layer_count(reference['steps'], student['steps'])
    if counted:
        return counted
    return _combination_hint(name, got, want, reference['steps'], lacking)


def _activation_words(number, ref, mine):
    return (f'layer {number} ({mine["kind"]}): expected {ref["activation"] or "no"} '
            f'activation, yours has {mine["activation"] or "none"}')


def _combination_hint(name, got, want, ref_steps, lacking):
    gap = f'{np.abs(got - want).max():.3g}'
    if not ref_steps:
        return (f'{name}: your numbers differ from the expected ones by up to {gap} (your '
                f'mean {got.mean():.4g}, expected {want.mean():.4g})')
    if close(np.maximum(got, 0), want):
        return lacking or ('every layer matches, but your output has negative numbers where '
                           'the expected one has none: is the ReLU after the sum (or at the '
                           'end) missing?')
    if _channels_reordered(got, want):
        return ('your output has the right channels in another order: check the order in '
                'which you concatenate the paths')
    return (f'every layer matches, but the block\'s output differs (by up to {gap}): '
            f'check how your forward combines them, e.g. the sum with the shortcut')


def _channels_reordered(got, want):
    if got.ndim < 2:
        return False
    left = list(range(want.shape[1]))
    for channel in range(got.shape[1]):
        match = next((c for c in left if close(got[:, channel], want[:, c])), None)
        if match is None:
            return False
        left.remove(match)
    return True
