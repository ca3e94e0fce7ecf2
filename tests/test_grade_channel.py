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
