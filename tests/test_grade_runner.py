"""The submission's side of grading (`runner`) and the time limit every piece
of student code runs under (`limits`), run here in the test's own process:
in the grader they run inside the sandbox, where a test cannot reach them
but through whole gradings (test_grade.py)."""
import os
import resource
import sys
import time
import traceback

import numpy as np
import pytest

from d2lnets.classroom import runner
from d2lnets.classroom.assignments import get_assignment
from d2lnets.classroom.channel import read_messages
from d2lnets.classroom.grade import _request, reference_observations, Settings
from d2lnets.classroom.limits import (StudentCodeError, describe_exception, run_limited)
from d2lnets.classroom.received import verdicts
from fire_answers import RIGHT

FIRE = get_assignment('fire')
REFERENCES = reference_observations(FIRE)


def limits_seen(limits):
    def child():
        runner.set_limits(limits)
        return {name: resource.getrlimit(number) for name, number in runner.LIMITS.items()
                if name in limits} | {'core': resource.getrlimit(resource.RLIMIT_CORE)}
    return run_limited(child, timeout=30)


def test_each_limit_is_set_hard_and_soft_and_core_dumps_are_off():
    want = {'memory': 40 * 2 ** 30, 'cpu': 120, 'processes': 4000, 'file_size': 2 ** 26,
            'open_files': 512}
    seen = limits_seen(want)
    assert seen == {name: (value, value) for name, value in want.items()} | {'core': (0, 0)}
    assert limits_seen({'cpu': 7.9})['cpu'] == (7, 7)


def test_cells_run_as_in_jupyter_and_what_goes_wrong_is_noted():
    namespace = {'__name__': '__main__'}
    notes = runner.run_cells([
        ['cell 1', 'a = 1'],
        ['cell 2', 'b = a + 1\nraise KeyError("k")\nc = 3'],
        # a loop past the limit, that ends (5 s) if run for real anyway
        ['cell 3', 'import time\nstart = time.monotonic()\n'
                   'while time.monotonic() - start < 5:\n    pass'],
        ['cell 4', 'def f(:\n    pass'],
        ['cell 5', 'import sys\nd = 4\nsys.exit(2)'],
        ['cell 6', 'e = a + b + d'],
    ], namespace, timeout=1)
    assert notes == [
        'cell 2 raised KeyError: \'k\' (cell 2, line 2); what it defined before that is kept',
        'cell 3 did not finish within 1 s: is there a loop that never ends?; skipped',
        'cell 4 has a syntax error: invalid syntax (line 1); skipped',
        'cell 5 called exit() (code 2); what it defined before that is kept']
    assert {k: namespace[k] for k in 'abde'} == {'a': 1, 'b': 2, 'd': 4, 'e': 7}
    assert 'c' not in namespace and 'start' not in namespace


def test_a_cell_that_crashes_its_process_is_skipped():
    namespace = {}
    notes = runner.run_cells([['cell 1', 'import os\nx = 1\nos._exit(0)']], namespace, 5)
    assert notes == ['cell 1 crashed the Python process (exit code 0); skipped']
    assert 'x' not in namespace


def check(number=0, **changes):
    sent = read_messages(_request(FIRE, REFERENCES, [], Settings(60, 5, 2048, False,
                                                                 False)))[0][0]
    return dict(sent['checks'][number], **changes)


def test_each_check_is_observed_or_says_why_not():
    namespace = {'__name__': '__main__'}
    runner.run_cells([['answer', RIGHT]], namespace, 30)
    message = runner.observe_check(check(), 'block', namespace, 30)
    assert message['status'] == 'observed'
    assert set(message['observation']) == {'param_problem', 'returned', 'steps', 'outputs'}
    assert verdicts([dict(message, check=0)], [FIRE.checks[0].call], REFERENCES[:1],
                    '')[0][0] == 'pass'
    hidden = runner.observe_check(check(1), 'block', namespace, 30)
    assert verdicts([dict(hidden, check=1)], [c.call for c in FIRE.checks], REFERENCES,
                    '')[1][0] == 'pass'
    assert runner.observe_check(check(target='Missing'), 'block', namespace, 30) == {
        'status': 'missing'}
    assert runner.observe_check(check(target='answer'), 'block', {'answer': 42}, 30) == {
        'status': 'missing'}

    def broken(*args):
        raise RuntimeError('half done')

    def looping(*args):
        while True:
            pass

    assert runner.observe_check(check(), 'block', {'Fire': broken}, 30) == {
        'status': 'error', 'text': 'Fire(2, 4) raised RuntimeError: half done'}
    assert runner.observe_check(check(), 'block', {'Fire': looping}, 1) == {
        'status': 'timeout', 'text': 'Fire(2, 4) did not finish within 1 s: is there a loop '
                                     'that never ends?'}

    def crashing(*args):
        os._exit(3)

    assert runner.observe_check(check(), 'block', {'Fire': crashing}, 30) == {
        'status': 'error', 'text': 'Fire(2, 4) crashed the Python process (exit code 3)'}


def test_the_runner_sends_its_notes_then_one_message_per_check(tmp_path):
    cells = [['answer', RIGHT], ['cell 2', 'raise ValueError("late")']]
    request = _request(FIRE, REFERENCES, cells, Settings(60, 30, 40 * 2 ** 10, False, False))
    (tmp_path / 'request').write_bytes(request)
    read_end, write_end = os.pipe()

    def child():
        sys.modules['d2lnets'].ATTEMPTS = ['d2lnets.models', 'd2lnets.models', 'chapters']
        runner.main([str(tmp_path / 'request'), str(write_end)])

    try:
        run_limited(child, timeout=60)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, 'rb') as f:
        messages, problem = read_messages(f.read())
    assert problem is None
    assert messages[0] == {'notes': ['cell 2 raised ValueError: late (cell 2, line 1); what it '
                                     'defined before that is kept'],
                           'attempts': ['d2lnets.models', 'chapters']}
    assert [m['check'] for m in messages[1:]] == [0, 1]
    assert [s for s, _ in verdicts(messages, [c.call for c in FIRE.checks], REFERENCES,
                                   '')] == ['pass', 'pass']


def test_describe_exception_names_the_type_the_text_and_the_students_line():
    def raise_in(source, label='cell 3'):
        try:
            exec(compile(source, f'<student:{label}>', 'exec'), {})
        except BaseException as err:  # noqa: B036
            return err

    err = raise_in('x = 1\nraise ValueError("bad value\\nsecond line")')
    assert describe_exception(err, 'Fire(2, 4)') == ('Fire(2, 4) raised ValueError: bad value '
                                                     '(cell 3, line 2)')
    err = raise_in('def f():\n    raise KeyError\n\nf()', label='ana.py')
    assert describe_exception(err, 'ana.py') == 'ana.py raised KeyError (ana.py, line 2)'
    assert describe_exception(RuntimeError('  '), 'your code') == 'your code raised RuntimeError'
    assert describe_exception(SystemExit(4), 'cell 1') == 'cell 1 called exit() (code 4)'
    assert describe_exception(SystemExit(), 'cell 1') == 'cell 1 called exit() (code None)'


def test_run_limited_returns_the_value_and_passes_the_arguments():
    assert run_limited(divmod, 17, 5) == (3, 2)
    with pytest.raises(StudentCodeError) as err:
        run_limited(divmod, 1, 0, what='divide')
    assert str(err.value) == 'divide raised ZeroDivisionError: integer division or modulo by zero'
    assert err.value.finished


def test_prints_of_student_code_are_discarded(capfd):
    assert run_limited(print, 'hello from the student') is None
    assert 'hello' not in capfd.readouterr().out


def test_a_time_out_and_a_crash_are_not_finished():
    def loop():
        while True:
            pass

    with pytest.raises(StudentCodeError) as err:
        run_limited(loop, timeout=0.5, what='loop')
    assert str(err.value) == 'loop did not finish within 0.5 s: is there a loop that never ends?'
    assert not err.value.finished
    with pytest.raises(StudentCodeError) as err:
        run_limited(os._exit, 9)
    assert str(err.value) == 'your code crashed the Python process (exit code 9)'
    assert not err.value.finished


def test_a_child_that_closes_its_pipe_and_goes_on_is_waited_for_one_second_then_killed():
    """Student code may close the pipe its result goes back on and keep
    running: the grader then waits 1 s for the process to end, no longer,
    and kills it (were it waited for to the end, a child that closes its
    pipe and loops would hold the grader past every time limit)."""
    def close_the_pipe_and_sleep():
        sys._getframe(1).f_locals['sender'].close()   # _run_child's end of the pipe
        time.sleep(5)

    start = time.monotonic()
    with pytest.raises(StudentCodeError) as err:
        run_limited(close_the_pipe_and_sleep, timeout=30)
    elapsed = time.monotonic() - start
    assert str(err.value) == 'your code crashed the Python process (exit code None)'
    assert not err.value.finished
    assert 1 <= elapsed < 1.8


# The runner's functions that the grader only calls in the sandbox's child,
# called here in the test's process (mutation testing: mutmut maps a test to
# the functions it calls in its own process, not in a fork; docs/results.md).

def recorded_setrlimit(monkeypatch):
    calls = []
    monkeypatch.setattr(runner.resource, 'setrlimit', lambda *args: calls.append(args))
    return calls


def test_set_limits_sets_each_limit_named_hard_and_soft_after_core_dumps(monkeypatch):
    calls = recorded_setrlimit(monkeypatch)
    runner.set_limits({'memory': 2 ** 31, 'cpu': 7.9, 'processes': 64,
                       'file_size': 2 ** 26, 'open_files': 256})
    assert calls == [(resource.RLIMIT_CORE, (0, 0)), (resource.RLIMIT_AS, (2 ** 31, 2 ** 31)),
                     (resource.RLIMIT_CPU, (7, 7)), (resource.RLIMIT_NPROC, (64, 64)),
                     (resource.RLIMIT_FSIZE, (2 ** 26, 2 ** 26)),
                     (resource.RLIMIT_NOFILE, (256, 256))]
    assert all(type(value) is int for _, pair in calls for value in pair)


def test_a_cell_is_probed_in_the_namespace_given():
    namespace = {'a': 2}
    runner._probe(runner._compile('cell 1', 'b = a * 3'), namespace)
    assert namespace['b'] == 6
    with pytest.raises(ZeroDivisionError) as info:
        runner._probe(runner._compile('cell 2', 'x = 1\n1 / 0'), {})
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (last.filename, last.lineno) == ('<student:cell 2>', 2)


def test_the_attempts_are_reported_once_each_in_order_and_at_most_20(monkeypatch):
    package = sys.modules['d2lnets']
    monkeypatch.setattr(package, 'ATTEMPTS', ['b', 'a', 'b', 'c', 'a'], raising=False)
    assert runner._attempts() == ['b', 'a', 'c']
    monkeypatch.setattr(package, 'ATTEMPTS', [f'm{i}' for i in range(25)])
    assert runner._attempts() == [f'm{i}' for i in range(20)]
    monkeypatch.delattr(package, 'ATTEMPTS')
    assert runner._attempts() == []


def run_main_here(tmp_path, monkeypatch, cells, argv=True, check_timeout=30):
    """runner.main in this process (its limits recorded, not set): the messages
    it wrote and the setrlimit calls."""
    calls = recorded_setrlimit(monkeypatch)
    request = _request(FIRE, REFERENCES, cells, Settings(42.5, check_timeout, 100, False, False))
    (tmp_path / 'request').write_bytes(request)
    with open(tmp_path / 'results', 'wb') as out:
        args = [str(tmp_path / 'request'), str(out.fileno())]
        if argv:
            runner.main(args)
        else:
            monkeypatch.setattr(sys, 'argv', ['runner.py'] + args)
            runner.main()
    messages, problem = read_messages((tmp_path / 'results').read_bytes())
    assert problem is None
    return messages, calls


def test_main_sets_the_requests_limits_runs_its_cells_as_main_then_observes_each_check(
        tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules['d2lnets'], 'ATTEMPTS', ['d2lnets.models'], raising=False)
    cells = [['answer', RIGHT], ['cell 2', 'raise ValueError(__name__)']]
    messages, calls = run_main_here(tmp_path, monkeypatch, cells, argv=False)
    assert calls == [(resource.RLIMIT_CORE, (0, 0)), (resource.RLIMIT_AS, (100 * 2 ** 20,) * 2),
                     (resource.RLIMIT_CPU, (43, 43)), (resource.RLIMIT_NPROC, (64, 64)),
                     (resource.RLIMIT_FSIZE, (64 * 2 ** 20,) * 2),
                     (resource.RLIMIT_NOFILE, (256, 256))]
    assert messages[0] == {'notes': ['cell 2 raised ValueError: __main__ (cell 2, line 1); '
                                     'what it defined before that is kept'],
                           'attempts': ['d2lnets.models']}
    assert [m['check'] for m in messages[1:]] == [0, 1]
    assert [m['status'] for m in messages[1:]] == ['observed', 'observed']
    assert [s for s, _ in verdicts(messages, [c.call for c in FIRE.checks], REFERENCES,
                                   '')] == ['pass', 'pass']


def test_main_with_argv_given_gives_cells_and_checks_the_requests_time_limit(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['runner.py', 'not', 'these'])
    loop = 'while True:\n    pass'
    messages, _ = run_main_here(tmp_path, monkeypatch, [
        ['cell 1', 'def Fire(*args):\n    ' + loop.replace('\n', '\n    ')],
        ['cell 2', loop]], check_timeout=0.5)
    assert messages[0]['notes'] == ['cell 2 did not finish within 0.5 s: is there a loop that '
                                    'never ends?; skipped']
    assert messages[1:] == [{'status': 'timeout', 'check': number,
                             'text': f'{FIRE.checks[number].call} did not finish within 0.5 s: '
                                     f'is there a loop that never ends?'} for number in (0, 1)]
    messages, _ = run_main_here(tmp_path, monkeypatch, [['cell 1', 'x = 1']])
    assert messages[1:] == [{'status': 'missing', 'check': 0}, {'status': 'missing', 'check': 1}]


def test_each_check_is_observed_with_the_weights_the_grader_sent():
    """Not with seeded weights of the submission's own: the observation with
    the grader's weights (here doubled) is the reference's with them."""
    from d2lnets.classroom.observe import observe
    from d2lnets.models.squeezenet import Fire
    namespace = {'__name__': '__main__'}
    runner.run_cells([['answer', RIGHT]], namespace, 30)
    sent = check()
    doubled = [w * 2 for w in sent['weights']]
    seen = runner.observe_check(dict(sent, weights=doubled), 'block', namespace, 30)
    want = observe(Fire, (2, 4), sent['input_shape'], 'block', {'weights': doubled})
    ((name, got),) = seen['observation']['outputs']
    ((_, expected),) = want['outputs']
    assert name == 'output' and np.allclose(got, expected, rtol=1e-5, atol=1e-6)
    ((_, seeded),) = REFERENCES[0]['outputs']
    assert not np.allclose(got, seeded, rtol=1e-2)


def test_the_child_side_runs_on_one_thread_discards_prints_and_sends_one_result(monkeypatch):
    """limits._run_child, here in the test's process (the fork's side of
    run_limited): MXNet's OpenMP set to one thread, stdout and stderr one
    discarded buffer, and ('ok', value) or ('error', words) sent."""
    from d2lnets.classroom import limits
    threads, sent, seen = [], [], []

    class Lib:
        @staticmethod
        def MXSetNumOMPThreads(number):
            threads.append(number.value)

    class Sender:
        @staticmethod
        def send(result):
            sent.append(result)

    def student(a, b):
        print('to stdout')
        print('to stderr', file=sys.stderr)
        seen.append((sys.stdout, sys.stderr))
        return a + b

    monkeypatch.setattr(limits.mx.base, '_LIB', Lib)
    monkeypatch.setattr(sys, 'stdout', sys.stdout)  # restored after the test
    monkeypatch.setattr(sys, 'stderr', sys.stderr)
    limits._run_child(Sender, student, (2, 3), 'add(2, 3)')
    limits._run_child(Sender, divmod, (1, 0), 'divide')
    limits._run_child(Sender, sys.exit, (3,), 'cell 1')
    assert threads == [1, 1, 1]
    assert sent == [('ok', 5),
                    ('error', 'divide raised ZeroDivisionError: integer division or modulo by '
                              'zero'),
                    ('error', 'cell 1 called exit() (code 3)')]
    out, err = seen[0]
    assert out is err and out.getvalue() == 'to stdout\nto stderr\n'
