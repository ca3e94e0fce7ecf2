"""What the grader accepts from a sandboxed submission, and the verdicts it draws.

Everything a submission's process hands back is hostile input: the grader
reads it as `channel` messages (float32 arrays and JSON, under a byte limit),
then `verdicts` checks each message's form (`observation`) before judging it
against the reference the grader computed itself. A check whose message is missing,
repeated, empty or malformed fails with a message of its own; no text from
the submission is shown as if the grader said it: `quoted` marks it.
"""
import re

import numpy as np

from .checker import CheckResult, judge

_RETURNED = ('array', 'tuple', 'list', 'other')
_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_.]{0,79}')
MAX_STEPS = 2000
MAX_TEXT = 300


class Malformed(ValueError):
    """A message does not have the expected form; the text says where."""


def quoted(text):
    """`text` from the submission as one quoted line: printable, at most `MAX_TEXT`
    characters, labelled by the caller as the submission's."""
    plain = ''.join(c if c.isprintable() else ' ' for c in str(text))
    plain = ' '.join(plain.split())
    if len(plain) > MAX_TEXT:
        plain = plain[:MAX_TEXT] + '...'
    return f'"{plain}"'


def _require(condition, what):
    if not condition:
        raise Malformed(what)


def _text(value, what, limit=MAX_TEXT):
    _require(isinstance(value, str) and len(value) <= limit, f'{what} is not a short text')
    return value


def _int(value, what, low=0, high=10 ** 9):
    _require(type(value) is int and low <= value <= high, f'{what} is not a whole number '
                                                          f'in range')
    return value


def _shape(value, what):
    _require(isinstance(value, list) and len(value) <= 6, f'{what} is not a shape')
    return [_int(d, what) for d in value]


def _array(value, what):
    _require(isinstance(value, np.ndarray) and value.dtype == np.float32,
             f'{what} is not a float32 array')
    return value


def _step(step):
    _require(isinstance(step, dict), 'a layer record is not a record')
    detail = step.get('detail')
    _require(isinstance(detail, dict) and set(detail) <= {'kernel', 'pad', 'stride'},
             'a layer\'s settings are not kernel, pad and stride')
    activation = step.get('activation')
    values = _array(step.get('values'), 'a layer\'s values')
    shape = _shape(step.get('shape'), 'a layer\'s shape')
    _require(list(values.shape) == shape, 'a layer\'s values do not have its shape')
    return {'kind': _text(step.get('kind'), 'a layer\'s kind', 80),
            'detail': {key: _shape(value, 'a layer setting') for key, value in detail.items()},
            'activation': None if activation is None else _text(activation, 'an activation',
                                                                40),
            'shape': shape, 'values': values}


def observation(fields, reference):
    """The observation in a check's message `fields`, checked against the form of
    the `reference` observation; raises `Malformed`."""
    _require(isinstance(fields, dict), 'the observation is not a record')
    problem = fields.get('param_problem')
    if problem is not None:
        _require(isinstance(problem, list) and len(problem) <= MAX_STEPS,
                 'the parameter report is not a list of layers')
        for layer in problem:
            _require(isinstance(layer, list) and len(layer) == 2
                     and isinstance(layer[1], list) and len(layer[1]) <= 100,
                     'the parameter report is malformed')
        problem = [[_text(kind, 'a layer\'s kind', 80), [_shape(s, 'a parameter shape')
                                                        for s in shapes]]
                   for kind, shapes in problem]
    returned = fields.get('returned')
    _require(isinstance(returned, list) and len(returned) == 2 and returned[0] in _RETURNED,
             'it does not say what the block returned')
    if returned[0] == 'other':
        _require(isinstance(returned[1], str) and _NAME.fullmatch(returned[1]),
                 'the returned type is not a name')
    else:
        _int(returned[1], 'the number of returned arrays', high=1000)
    outputs = fields.get('outputs')
    _require(isinstance(outputs, list), 'it holds no list of outputs')
    for pair in outputs:
        _require(isinstance(pair, list) and len(pair) == 2, 'an output is not a name and '
                                                            'an array')
    outputs = [[_text(name, 'an output\'s name', 80), _array(value, 'an output')]
               for name, value in outputs]
    steps = fields.get('steps')
    _require(isinstance(steps, list) and len(steps) <= MAX_STEPS, 'its layers are not a list')
    if problem is None and returned == reference['returned']:
        names = [name for name, _ in reference['outputs']]
        _require(outputs, 'it holds no outputs')
        _require([name for name, _ in outputs] == names,
                 f'its outputs are not the {len(names)} asked for')
    return {'param_problem': problem, 'returned': returned, 'outputs': outputs,
            'steps': [_step(step) for step in steps]}


def verdicts(messages, calls, references, ended):
    """One (status, CheckResult) per check, from the `messages` of a run.
    `calls` are the checks' calls ('Fire(2, 4)'); `references` their reference
    observations; `ended` says, in words, why checks without a message have none."""
    by_check = {}
    for message in messages:
        number = message.get('check') if isinstance(message, dict) else None
        if type(number) is int and 0 <= number < len(calls):
            by_check.setdefault(number, []).append(message)
    return [_verdict(by_check.get(number, []), call, reference, ended)
            for number, (call, reference) in enumerate(zip(calls, references))]


def _verdict(messages, call, reference, ended):
    if not messages:
        return 'not run', CheckResult(False, f'not run: {ended}')
    if len(messages) > 1:
        return 'error', CheckResult(False, f'the submission\'s run handed back '
                                           f'{len(messages)} results for this check, '
                                           f'expected one: none is used')
    message = messages[0]
    status = message.get('status')
    if status == 'missing':
        return 'error', CheckResult(False, f'no {call.split("(")[0]} defined: define it '
                                           f'with that name')
    if status in ('error', 'timeout'):
        text = message.get('text')
        said = quoted(text) if isinstance(text, str) else '(nothing)'
        return status, CheckResult(False, f'{call} failed; the submission\'s run '
                                          f'reported: {said}')
    if status != 'observed':
        return 'error', CheckResult(False, 'the submission\'s run handed back a result of '
                                           'no known kind for this check')
    try:
        seen = observation(message.get('observation'), reference)
    except Malformed as err:
        return 'error', CheckResult(False, f'the submission\'s run handed back a malformed '
                                           f'result for this check ({err})')
    try:
        result = judge(reference, seen)
    except (IndexError, KeyError, TypeError, ValueError) as err:
        return 'error', CheckResult(False, f'the submission\'s result for this check could '
                                           f'not be judged ({type(err).__name__})')
    return ('pass' if result.passed else 'fail'), result
