"""The results channel: what the grader accepts from a sandbox, and what it
refuses -- empty, oversized, malformed or repeated results -- each as a
failed check with its own message; nothing from the submission is shown as
the grader's own words."""
import os
import struct
import sys

import numpy as np
import pytest

from d2lnets.classroom.assignments import get_assignment
from d2lnets.classroom.channel import MAGIC, encode, read_messages
from d2lnets.classroom.grade import reference_observations
from d2lnets.classroom.received import Malformed, observation, quoted, verdicts
from d2lnets.classroom.sandbox import collect

FIRE = get_assignment('fire')
REFERENCES = reference_observations(FIRE)
CALLS = [c.call for c in FIRE.checks]


def as_sent(reference):
    """The reference's observation as an honest sandbox sends it."""
    return {key: reference[key] for key in ('param_problem', 'returned', 'steps', 'outputs')}


def through_channel(*messages):
    received, problem = read_messages(b''.join(encode(m) for m in messages))
    assert problem is None
    return received


def test_an_honest_result_travels_and_passes():
    messages = through_channel({'notes': [], 'attempts': []},
                               *({'check': n, 'status': 'observed', 'observation': as_sent(r)}
                                 for n, r in enumerate(REFERENCES)))
    results = verdicts(messages, CALLS, REFERENCES, 'stopped')
    assert [status for status, _ in results] == ['pass', 'pass']
    arrays = messages[1]['observation']['outputs'][0][1]
    assert arrays.dtype == np.float32 and not arrays.flags.writeable


def test_empty_missing_and_repeated_results_fail_each_with_its_own_message():
    empty = dict(as_sent(REFERENCES[0]), outputs=[])
    messages = through_channel({'check': 0, 'status': 'observed', 'observation': empty})
    results = verdicts(messages, CALLS, REFERENCES, 'the run stopped')
    assert results[0] == ('error', (False, 'the submission\'s run handed back a malformed '
                                           'result for this check (it holds no outputs)'))
    assert results[1] == ('not run', (False, 'not run: the run stopped'))
    twice = {'check': 1, 'status': 'observed', 'observation': as_sent(REFERENCES[1])}
    results = verdicts(through_channel(twice, twice), CALLS, REFERENCES, '')
    assert results[1][0] == 'error' and 'handed back 2 results for this check' in \
        results[1][1].message
    assert verdicts([], CALLS, REFERENCES, 'x')[0][0] == 'not run'
    unknown = verdicts([{'check': 0, 'status': 'passed'}], CALLS, REFERENCES, '')
    assert unknown[0][1].message == ('the submission\'s run handed back a result of no known '
                                     'kind for this check')


@pytest.mark.parametrize('change, why', [
    (lambda o: dict(o, outputs=[['output', [1.0, 2.0]]]), 'an output is not a float32 array'),
    (lambda o: dict(o, outputs=[['result', o['outputs'][0][1]]]),
     'its outputs are not the 1 asked for'),
    (lambda o: dict(o, outputs=o['outputs'] * 2), 'its outputs are not the 1 asked for'),
    (lambda o: dict(o, returned=['array', 'one']), 'the number of returned arrays is not a '
                                                   'whole number in range'),
    (lambda o: dict(o, returned=['generator', 1]), 'it does not say what the block returned'),
    (lambda o: dict(o, steps=[dict(o['steps'][0], shape=[1, 2])]),
     'a layer\'s values do not have its shape'),
    (lambda o: dict(o, steps='many'), 'its layers are not a list'),
    (lambda o: dict(o, param_problem=[['convolution', 'big']]),
     'the parameter report is malformed'),
    (lambda o: 'pass', 'the observation is not a record'),
])
def test_malformed_observations_are_refused(change, why):
    sent = change(as_sent(REFERENCES[0]))
    (message,) = through_channel({'check': 0, 'status': 'observed', 'observation': sent})
    with pytest.raises(Malformed, match=f'^{why}$'):
        observation(message['observation'], REFERENCES[0])
    status, result = verdicts([message], CALLS, REFERENCES, '')[0]
    assert status == 'error' and result.message.endswith(f'({why})')


def test_what_the_block_returned_is_judged_whole():
    output = REFERENCES[0]['outputs'][0][1]
    tupled = dict(as_sent(REFERENCES[0]), returned=['tuple', 2],
                  outputs=[['output 1', output], ['output 2', output]])
    (message,) = through_channel({'check': 0, 'status': 'observed', 'observation': tupled})
    assert verdicts([message], CALLS, REFERENCES, '')[0] == (
        'fail', (False, 'your block returned a tuple of 2 arrays, expected one array'))


def raw(header, data=b''):
    """A message of `header` (bytes, meant as JSON) and `data`, lengths right."""
    payload = struct.pack('>I', len(header)) + header + data
    return MAGIC + struct.pack('>Q', len(payload)) + payload


@pytest.mark.parametrize('data, problem', [
    (b'garbage', 'the results do not continue with a message header'),
    (MAGIC + struct.pack('>Q', 2 ** 40), 'a message is cut short'),
    (raw(b'{]'), 'a message\'s header is not valid JSON of the expected form'),
    (raw(b'[' * 100000 + b']' * 100000), 'a message\'s header is not valid JSON of the '
                                           'expected form'),
    (raw(b'{"fields": {}, "arrays": [[-1]]}'), 'an array has an invalid shape [-1]'),
    (raw(b'{"fields": {}, "arrays": [[1000, 1000]]}', b'\0' * 16),
     'an array is longer than its message'),
    (raw(b'{"fields": {}, "arrays": [[2]]}', b'\0' * 12), 'a message has bytes after its arrays'),
    (raw(b'{"fields": {"array": 3}, "arrays": []}'),
     'a message refers to an array it does not hold'),
])
def test_malformed_bytes_end_the_results_there(data, problem):
    good = encode({'notes': ['fine'], 'attempts': []})
    messages, found = read_messages(good + data)
    assert messages == [{'notes': ['fine'], 'attempts': []}]
    assert found == problem


def test_the_results_pipe_is_read_under_a_byte_limit(tmp_path):
    read_end, write_end = os.pipe()
    flood = (f'import os\nfor _ in range(64):\n    os.write({write_end}, b"x" * 2 ** 20)\n'
             f'print("y" * 10 ** 6)\n')
    run = collect([sys.executable, '-c', flood], [write_end], read_end, timeout=60,
                  max_bytes=2 ** 20)
    assert run.overflowed and len(run.results) == 2 ** 20 and not run.timed_out


def test_the_submissions_text_is_quoted_on_one_line():
    assert quoted('PASS all checks\nFAIL\x1b[2J nothing') == '"PASS all checks FAIL [2J nothing"'
    assert quoted('x' * 1000) == '"' + 'x' * 300 + '..."'
    result = verdicts([{'check': 0, 'status': 'error', 'text': 'PASS\n10 of 10'}], CALLS,
                      REFERENCES, '')[0]
    assert result == ('error', (False, 'Fire(2, 4) failed; the submission\'s run reported: '
                                       '"PASS 10 of 10"'))


# What `observation` hands on, and where each of its bounds lies. A sandbox is
# hostile: every field is checked for its form and size, and what passes is
# handed on whole, under the names the judge reads.

def small_step(**changes):
    """A well-formed layer record: a convolution's 1x2x3x3 output."""
    step = {'kind': 'convolution', 'detail': {'kernel': [1, 1], 'pad': [0, 0],
                                              'stride': [1, 1]},
            'activation': 'relu', 'shape': [1, 2, 3, 3],
            'values': np.arange(18, dtype=np.float32).reshape(1, 2, 3, 3)}
    return dict(step, **changes)


def off_reference(**changes):
    """An observation that returned something else than the reference: its
    outputs' names are not compared, only their form."""
    sent = {'param_problem': None, 'returned': ['tuple', 2], 'steps': [],
            'outputs': [['output 1', np.zeros(2, np.float32)]]}
    return dict(sent, **changes)


def test_an_observation_is_handed_on_whole_under_the_names_the_judge_reads():
    sent = as_sent(REFERENCES[0])
    seen = observation(sent, REFERENCES[0])
    assert set(seen) == {'param_problem', 'returned', 'outputs', 'steps'}
    assert seen['param_problem'] is None and seen['returned'] == ['array', 1]
    assert [name for name, _ in seen['outputs']] == ['output']
    assert seen['outputs'][0][1] is sent['outputs'][0][1]
    assert len(seen['steps']) == 3
    for mine, ref in zip(seen['steps'], REFERENCES[0]['steps']):
        assert set(mine) == {'kind', 'detail', 'activation', 'shape', 'values'}
        assert (mine['kind'], mine['detail'], mine['activation'], mine['shape']) == (
            ref['kind'], ref['detail'], ref['activation'], ref['shape'])
        assert mine['activation'] == 'relu'
        assert mine['values'] is ref['values']
    plain = observation(off_reference(steps=[small_step(activation=None, detail={})]),
                        REFERENCES[0])
    assert plain['steps'][0]['activation'] is None and plain['steps'][0]['detail'] == {}


def test_a_parameter_report_is_handed_on_whole():
    report = [['convolution', [[8, 6, 1, 1], [8]]], ['dense layer', []]]
    seen = observation(off_reference(param_problem=report), REFERENCES[0])
    assert seen['param_problem'] == report
    message = {'check': 0, 'status': 'observed', 'observation': dict(
        as_sent(REFERENCES[0]), param_problem=[['convolution', [[8, 6, 1, 1]]]])}
    status, result = verdicts([message], CALLS, REFERENCES, '')[0]
    assert status == 'fail' and result.message.startswith(
        'layer 1 (convolution): your parameters have shapes 8x6x1x1, expected ')


def test_what_returned_something_else_says_its_type_by_name():
    seen = observation(off_reference(returned=['other', 'generator'], outputs=[]), REFERENCES[0])
    assert seen['returned'] == ['other', 'generator'] and seen['outputs'] == []
    seen = observation(off_reference(returned=['other', 'mxnet.ndarray.NDArray']), REFERENCES[0])
    assert seen['returned'] == ['other', 'mxnet.ndarray.NDArray']


@pytest.mark.parametrize('change, why', [
    (dict(param_problem='ab'), 'the parameter report is not a list of layers'),
    (dict(param_problem=7), 'the parameter report is not a list of layers'),
    (dict(param_problem=[['convolution', []]] * 2001),
     'the parameter report is not a list of layers'),
    (dict(param_problem=[['convolution']]), 'the parameter report is malformed'),
    (dict(param_problem=[['convolution', [], []]]), 'the parameter report is malformed'),
    (dict(param_problem=[['convolution', [[1]] * 101]]), 'the parameter report is malformed'),
    (dict(param_problem=[['c' * 81, []]]), 'a layer\'s kind is not a short text'),
    (dict(param_problem=[[None, []]]), 'a layer\'s kind is not a short text'),
    (dict(param_problem=[['convolution', [[1.5]]]]),
     'a parameter shape is not a whole number in range'),
    (dict(param_problem=[['convolution', ['ab']]]), 'a parameter shape is not a shape'),
    (dict(returned=['other', 'not a name!']), 'the returned type is not a name'),
    (dict(returned=['other', 3]), 'the returned type is not a name'),
    (dict(returned=['other', 'x' * 81]), 'the returned type is not a name'),
    (dict(returned=['tuple', 1001]), 'the number of returned arrays is not a whole number '
                                     'in range'),
    (dict(returned=['tuple', -1]), 'the number of returned arrays is not a whole number '
                                   'in range'),
    (dict(returned=['tuple', True]), 'the number of returned arrays is not a whole number '
                                     'in range'),
    (dict(outputs='many'), 'it holds no list of outputs'),
    (dict(outputs=['ab']), 'an output is not a name and an array'),
    (dict(outputs=[7]), 'an output is not a name and an array'),
    (dict(outputs=[['a' * 81, np.zeros(2, np.float32)]]), 'an output\'s name is not a short '
                                                          'text'),
    (dict(outputs=[[None, np.zeros(2, np.float32)]]), 'an output\'s name is not a short text'),
    (dict(outputs=[['output 1', np.zeros(2, np.float64)]]), 'an output is not a float32 array'),
    (dict(steps=[small_step()] * 2001), 'its layers are not a list'),
    (dict(steps=['convolution']), 'a layer record is not a record'),
    (dict(steps=[small_step(detail={'kernel': [1, 1], 'dilate': [1, 1]})]),
     'a layer\'s settings are not kernel, pad and stride'),
    (dict(steps=[small_step(detail=[['kernel', [1, 1]]])]),
     'a layer\'s settings are not kernel, pad and stride'),
    (dict(steps=[small_step(detail={'kernel': 'ab'})]), 'a layer setting is not a shape'),
    (dict(steps=[small_step(detail={'kernel': [1] * 7})]), 'a layer setting is not a shape'),
    (dict(steps=[small_step(detail={'kernel': [10 ** 9 + 1]})]),
     'a layer setting is not a whole number in range'),
    (dict(steps=[small_step(values=[[1.0]])]), 'a layer\'s values is not a float32 array'),
    (dict(steps=[small_step(shape='ab')]), 'a layer\'s shape is not a shape'),
    (dict(steps=[small_step(shape=[1, 2, 3, -3])]),
     'a layer\'s shape is not a whole number in range'),
    (dict(steps=[small_step(kind='k' * 81)]), 'a layer\'s kind is not a short text'),
    (dict(steps=[small_step(kind=['convolution'])]), 'a layer\'s kind is not a short text'),
    (dict(steps=[small_step(activation='a' * 41)]), 'an activation is not a short text'),
    (dict(steps=[small_step(activation=1)]), 'an activation is not a short text'),
])
def test_each_field_of_an_observation_is_refused_in_its_own_words(change, why):
    with pytest.raises(Malformed, match=f'^{why}$'):
        observation(off_reference(**change), REFERENCES[0])


def test_each_bound_of_an_observation_is_inclusive():
    six = np.zeros((1,) * 6, np.float32)
    seen = observation(off_reference(
        param_problem=[['c' * 80, [[1]] * 100]] * 2000, returned=['list', 1000],
        outputs=[['o' * 80, np.zeros(2, np.float32)]],
        steps=[small_step(kind='k' * 80, activation='a' * 40,
                          detail={'kernel': [10 ** 9] * 6})] * 1999
        + [small_step(shape=[1] * 6, values=six)]), REFERENCES[0])
    assert len(seen['param_problem']) == 2000 and seen['returned'] == ['list', 1000]
    assert seen['outputs'][0][0] == 'o' * 80 and len(seen['steps']) == 2000
    assert seen['steps'][0]['kind'] == 'k' * 80 and seen['steps'][0]['activation'] == 'a' * 40
    assert seen['steps'][0]['detail'] == {'kernel': [10 ** 9] * 6}
    assert seen['steps'][-1]['shape'] == [1] * 6


def test_every_verdict_of_a_check_says_it_did_not_pass():
    call = CALLS[0]
    observed = {'check': 0, 'status': 'observed', 'observation': as_sent(REFERENCES[0])}
    cases = [
        ([observed, observed], 'error', 'the submission\'s run handed back 2 results for this '
                                        'check, expected one: none is used'),
        ([{'check': 0, 'status': 'missing'}], 'error', 'no Fire defined: define it with that '
                                                       'name'),
        ([{'check': 0, 'status': 'timeout', 'text': 'Fire(2, 4) did not finish'}], 'timeout',
         'Fire(2, 4) failed; the submission\'s run reported: "Fire(2, 4) did not finish"'),
        ([{'check': 0, 'status': 'error', 'text': ['not', 'text']}], 'error',
         'Fire(2, 4) failed; the submission\'s run reported: (nothing)'),
        ([{'check': 0, 'status': 'error'}], 'error',
         'Fire(2, 4) failed; the submission\'s run reported: (nothing)'),
        ([{'check': 0, 'status': 'passed'}], 'error', 'the submission\'s run handed back a '
                                                      'result of no known kind for this check'),
    ]
    for messages, status, words in cases:
        assert verdicts(messages, CALLS, REFERENCES, '')[0] == (status, (False, words))
    assert call == 'Fire(2, 4)'


def test_a_result_the_judge_cannot_read_is_an_error_not_a_crash():
    """Well-formed but inconsistent: a wrong output shape with a layer whose
    shape has no channel axis; the judge's hint then cannot index it."""
    odd = dict(as_sent(REFERENCES[0]), outputs=[['output', np.zeros(2, np.float32)]],
               steps=[small_step(shape=[], values=np.zeros((), np.float32))])
    message = {'check': 0, 'status': 'observed', 'observation': odd}
    assert verdicts([message], CALLS, REFERENCES, '')[0] == (
        'error', (False, 'the submission\'s result for this check could not be judged '
                         '(IndexError)'))


def test_messages_that_are_not_records_or_name_no_check_are_left_out():
    observed = {'check': 1, 'status': 'observed', 'observation': as_sent(REFERENCES[1])}
    messages = [[1, 2], 'text', 7, None, {'check': 2, 'status': 'missing'},
                {'check': -1, 'status': 'missing'}, {'check': True, 'status': 'missing'},
                {'check': '0', 'status': 'missing'}, observed]
    results = verdicts(messages, CALLS, REFERENCES, 'it stopped')
    assert results[0] == ('not run', (False, 'not run: it stopped'))
    assert results[1][0] == 'pass'


def test_a_text_of_exactly_the_limit_is_not_cut():
    assert quoted('x' * 300) == '"' + 'x' * 300 + '"'
    assert quoted('x' * 301) == '"' + 'x' * 300 + '..."'


def cut(message, at):
    """A message's bytes with its payload replaced by `at` (lengths made right)."""
    return MAGIC + struct.pack('>Q', len(at)) + at


@pytest.mark.parametrize('data, problem', [
    (b'garbage-garbage-garbage', 'the results do not continue with a message header'),
    (MAGIC + b'\0\0', 'the results do not continue with a message header'),
    (MAGIC + b'\xff' * 8, 'a message is cut short'),
    (encode({'notes': ['cut']})[:-1], 'a message is cut short'),
    (cut(None, b'ab'), 'a message has no header'),
    (raw(b''), 'a message\'s header is not valid JSON of the expected form'),
    (cut(None, b'\xff\xff\xff\xff{"fields": 1, "arrays": []}'),
     'a message\'s header is longer than the message'),
    (raw(b'{"fields": {}, "arrays": {}}'), 'a message\'s header lists no arrays'),
    (raw(b'{"fields": {}, "arrays": [5]}'), 'an array has an invalid shape 5'),
    (raw(b'{"fields": {}, "arrays": [[1, 1, 1, 1, 1, 1, 1]]}', b'\0' * 4),
     'an array has an invalid shape [1, 1, 1, 1, 1, 1, 1]'),
    (raw(b'{"fields": {}, "arrays": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]]}'),
     'an array has an invalid shape [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, '),
    (raw(b'{"fields": {}, "arrays": [[1.0]]}'), 'an array has an invalid shape [1.0]'),
    (raw(b'{"fields": {}, "arrays": [[true]]}'), 'an array has an invalid shape [True]'),
    # sizes whose product overflows 64 bits (or wraps to 0) are too long, not a crash
    (raw(b'{"fields": {}, "arrays": [[4294967296, 4294967296]]}'),
     'an array is longer than its message'),
    (raw(b'{"fields": {}, "arrays": [[1180591620717411303424]]}'),
     'an array is longer than its message'),
    (raw(b'{"fields": {"array": 1}, "arrays": [[1]]}', b'\0' * 4),
     'a message refers to an array it does not hold'),
    (raw(b'{"fields": ' + b'[' * 600 + b']' * 600 + b', "arrays": []}'),
     'a message nests too deep'),
])
def test_every_malformed_message_is_named_and_none_escapes(data, problem):
    good = encode({'notes': ['fine'], 'attempts': []})
    messages, found = read_messages(good + data)
    assert messages == [{'notes': ['fine'], 'attempts': []}]
    assert found == problem


def test_arrays_of_every_size_and_type_travel_as_float32():
    sent = {'empty': np.zeros((2, 0)), 'six': np.ones((1,) * 6),
            'double': np.array([1.5, -2.25]), 'swapped': np.arange(3, dtype='>f4'),
            'strided': np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],
            'nested': [[np.zeros(1)], {'inner': np.full(2, 7.0)}]}
    (got,), problem = read_messages(encode(sent))
    assert problem is None
    for key in ('empty', 'six', 'double', 'swapped', 'strided'):
        assert got[key].dtype == np.float32 and got[key].shape == np.shape(sent[key])
        np.testing.assert_array_equal(got[key], sent[key].astype(np.float32))
    np.testing.assert_array_equal(got['nested'][1]['inner'], [7.0, 7.0])
    assert got['nested'][0][0].shape == (1,)
    (got,), _ = read_messages(raw(b'{"fields": {"x": {"array": 0}}, "arrays": [[]]}',
                                  struct.pack('<f', 2.5)))
    assert got['x'].shape == () and got['x'] == 2.5


def test_send_writes_the_whole_message(tmp_path):
    from d2lnets.classroom.channel import send
    fields = {'check': 1, 'values': np.arange(300000, dtype=np.float32)}
    with open(tmp_path / 'pipe', 'wb') as f:
        send(f.fileno(), fields)
        send(f.fileno(), {'check': 2})
    (first, second), problem = read_messages((tmp_path / 'pipe').read_bytes())
    assert problem is None and first['check'] == 1 and second == {'check': 2}
    np.testing.assert_array_equal(first['values'], fields['values'])
