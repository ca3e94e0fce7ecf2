"""How the grader runs a class, in its own process: the request it hands a
sandbox, the command and files it gives it, how it reads what comes back
(notes, overflows, time-outs, malformed results), the feedback, the merged
gradebook and the command line. The sandbox itself is replaced by a stand-in
that hands back chosen bytes (test_grade.py and test_grade_attacks.py run the
real one)."""
import os
import sys

import numpy as np
import pytest

from d2lnets.classroom import grade
from d2lnets.classroom.assignments import get_assignment
from d2lnets.classroom.channel import encode, read_messages
from d2lnets.classroom.checker import CheckResult
from d2lnets.classroom.gradebook import Graded, write_rows
from d2lnets.classroom.grade import (LIBRARY_ROOT, Settings, _request, default_timeout,
                                     feedback_text, grade_folder, grade_submission, kit_mounts,
                                     main, reference_observations, results_limit,
                                     run_submission, usable_cores)
from d2lnets.classroom.sandbox import Collected, hidden_packages

FIRE = get_assignment('fire')
REFERENCES = reference_observations(FIRE)
SETTINGS = Settings(timeout=42.5, check_timeout=3.0, memory_mb=512, trust=False,
                    allow_library=False)


def observed(number):
    return {'check': number, 'status': 'observed', 'observation': {
        key: REFERENCES[number][key] for key in ('param_problem', 'returned', 'steps',
                                                 'outputs')}}


def passing(notes=(), attempts=()):
    return encode({'notes': list(notes), 'attempts': list(attempts)}) + b''.join(
        encode(observed(n)) for n in range(len(FIRE.checks)))


def stand_in(monkeypatch, results=b'', output='', timed_out=False, overflowed=False):
    """Replace the sandbox: every run hands back `results`; the calls are kept."""
    calls = []

    def run(files, request, kit, settings, max_bytes):
        calls.append({'files': files, 'request': read_messages(request)[0][0], 'kit': kit,
                      'settings': settings, 'max_bytes': max_bytes})
        return Collected(results, output, timed_out, overflowed, 0)

    monkeypatch.setattr(grade, 'run_submission', run)
    return calls


def test_a_submission_has_start_up_time_and_a_checks_time_for_each_check_and_four_cells():
    assert default_timeout(FIRE, 10.0) == 30.0 + 10.0 * (2 + 4)
    assert default_timeout(get_assignment('residual'), 2.5) == 30.0 + 2.5 * (5 + 4)


def test_the_results_limit_is_a_mebibyte_and_eight_times_the_references():
    size = sum(len(encode({'steps': r['steps'], 'outputs': r['outputs']})) for r in REFERENCES)
    assert results_limit(REFERENCES) == 2 ** 20 + 8 * size


def test_the_request_holds_the_cells_the_limits_and_each_check():
    cells = [['cell 1', 'x = 1'], ['cell 2', 'y = 2']]
    (request,), problem = read_messages(_request(FIRE, REFERENCES, cells, SETTINGS))
    assert problem is None
    assert request['cells'] == cells and request['kind'] == 'block'
    assert request['timeout'] == 3.0
    assert request['limits'] == {'memory': 512 * 2 ** 20, 'cpu': 43, 'processes': 64,
                                 'file_size': 64 * 2 ** 20, 'open_files': 256}
    assert len(request['checks']) == 2
    for check, sent, reference in zip(FIRE.checks, request['checks'], REFERENCES):
        assert {k: sent[k] for k in ('target', 'args', 'input_shape', 'call', 'layout')} == {
            'target': 'Fire', 'args': repr(check.args), 'input_shape': list(check.input_shape),
            'call': check.call, 'layout': reference['layout']}
        assert len(sent['weights']) == len(reference['weights'])
        for got, want in zip(sent['weights'], reference['weights']):
            np.testing.assert_array_equal(got, want)
    assert request['checks'][1]['args'] == '(3, 5)'


def test_an_honest_run_passes_and_its_notes_are_quoted(tmp_path, monkeypatch):
    calls = stand_in(monkeypatch, passing(notes=['cell 2 raised\nValueError', 7],
                                          attempts=['d2lnets.models', 'chapters.ch_7',
                                                    'not a name', 'x' * 80, 3]))
    (tmp_path / 'ana.py').write_text('x = 1')
    graded = grade_submission('ana', [str(tmp_path / 'ana.py')], FIRE, REFERENCES, '/the/kit',
                              SETTINGS)
    assert graded.student == 'ana'
    assert [status for status, _ in graded.results] == ['pass', 'pass']
    assert graded.notes == [
        'the submission\'s run reported: "cell 2 raised ValueError"',
        'the submission tried to use d2lnets.models, chapters.ch_7: the library\'s references '
        'are left out while grading, so what depends on them fails (answers must be the '
        'student\'s own; the teacher may allow the library with --allow-library)']
    (call,) = calls
    assert call['files'] == [('ana.py', b'x = 1')] and call['kit'] == '/the/kit'
    assert call['settings'] is SETTINGS and call['max_bytes'] == results_limit(REFERENCES)
    assert call['request']['cells'] == [['ana.py', 'x = 1']]


def test_only_the_first_notes_message_and_its_first_twenty_notes_count(tmp_path, monkeypatch):
    first = encode({'notes': [f'n{i}' for i in range(25)], 'attempts': 'chapters'})
    second = encode({'notes': ['later'], 'attempts': ['d2lnets.models']})
    stand_in(monkeypatch, first + second)
    (tmp_path / 'ana.py').write_text('')
    notes = grade_submission('ana', [str(tmp_path / 'ana.py')], FIRE, REFERENCES, 'kit',
                             SETTINGS).notes
    assert notes == [f'the submission\'s run reported: "n{i}"' for i in range(20)]
    stand_in(monkeypatch, encode({'check': 0}) + encode({'notes': 'text', 'attempts': [
        f'd2lnets.m{i}' for i in range(7)]}))
    notes = grade_submission('ana', [str(tmp_path / 'ana.py')], FIRE, REFERENCES, 'kit',
                             SETTINGS).notes
    assert notes == [f'the submission tried to use {", ".join(f"d2lnets.m{i}" for i in range(5))}'
                     f': the library\'s references are left out while grading, so what depends '
                     f'on them fails (answers must be the student\'s own; the teacher may allow '
                     f'the library with --allow-library)']


def test_a_run_that_overflowed_ended_malformed_or_ran_out_of_time_says_so(tmp_path,
                                                                         monkeypatch):
    (tmp_path / 'ana.py').write_text('')
    results = encode({'notes': [], 'attempts': []}) + encode(observed(0)) + b'junk'
    stand_in(monkeypatch, results, output='start\nloading\nlast words \x1b[2J\n\n',
             overflowed=True)
    graded = grade_submission('ana', [str(tmp_path / 'ana.py')], FIRE, REFERENCES, 'kit',
                              SETTINGS)
    assert graded.notes == [
        f'the submission\'s run handed back more than {len(results)} bytes of results: the '
        f'rest was discarded and the run stopped',
        'the submission\'s results end in a malformed message (the results do not continue '
        'with a message header)']
    assert graded.results[0][0] == 'pass'
    assert graded.results[1] == ('not run', CheckResult(
        False, 'not run: the submission\'s process stopped before this check; its last output '
               'line was: "last words [2J"'))
    stand_in(monkeypatch, encode({'notes': [], 'attempts': []}), output=' \n',
             timed_out=True)
    graded = grade_submission('ana', [str(tmp_path / 'ana.py')], FIRE, REFERENCES, 'kit',
                              SETTINGS)
    assert graded.notes == ['the submission ran past its 42.5 s limit and was stopped']
    assert graded.results == [('not run', CheckResult(
        False, 'not run: the submission used up its 42.5 s'))] * 2
    stand_in(monkeypatch, b'', output='')
    graded = grade_submission('ana', [str(tmp_path / 'ana.py')], FIRE, REFERENCES, 'kit',
                              SETTINGS)
    assert graded.notes == [] and graded.results[0][1].message == (
        'not run: the submission\'s process stopped before this check; its last output line '
        'was: (none)')


def test_a_submission_without_code_or_with_an_unreadable_file_is_not_run(tmp_path,
                                                                         monkeypatch):
    calls = stand_in(monkeypatch)
    assert grade_submission('eve', [], FIRE, REFERENCES, 'kit', SETTINGS) == Graded(
        'eve', [('not run', CheckResult(False, 'no notebook or .py file found'))] * 2,
        ['no notebook or .py file found'])
    (tmp_path / 'bad.ipynb').write_text('{not json')
    graded = grade_submission('bad', [str(tmp_path / 'bad.ipynb')], FIRE, REFERENCES, 'kit',
                              SETTINGS)
    why = ('the notebook bad.ipynb cannot be read (JSONDecodeError: Expecting property name '
           'enclosed in double quotes: line 1 column 2 (char 1))')
    assert graded == Graded('bad', [('not run', CheckResult(False, why))] * 2, [why])
    assert calls == []


def test_the_feedback_a_student_reads():
    graded = Graded('ana', [('pass', CheckResult(True, 'right')),
                            ('fail', CheckResult(False, 'layer 1: wrong'))], ['a note'])
    assert feedback_text(FIRE, graded) == (
        'Write the Fire module (fire): 1 of 2 checks pass, 1 of 3 points\n'
        'note: a note\n'
        'PASS Fire(2, 4) on 1x6x7x7: right\n'
        'FAIL hidden: Fire(3, 5) on 2x4x5x5: layer 1: wrong\n')
    both = Graded('ana', [('pass', CheckResult(True, 'a')), ('pass', CheckResult(True, 'b'))],
                  [])
    assert feedback_text(FIRE, both).splitlines()[0] == (
        'Write the Fire module (fire): 2 of 2 checks pass, 3 of 3 points')


def test_a_class_graded_through_the_stand_in(tmp_path, monkeypatch):
    subs = tmp_path / 'subs'
    subs.mkdir()
    (subs / 'ana.py').write_text('a = 1')
    (subs / 'ben.py').write_text('b = 2')
    (subs / 'zed.py').write_text('z = 3')
    roster = tmp_path / 'students.csv'
    roster.write_text('student\nana\nben\ncarl\n')
    calls = stand_in(monkeypatch, passing())
    monkeypatch.setattr(grade, 'sandbox_problem', lambda: None)
    reported = []
    out = tmp_path / 'class' / 'grades.csv'
    out.parent.mkdir()
    graded = grade_folder(str(subs), 'fire', out=str(out), roster=str(roster),
                          report=reported.append, jobs=1)
    assert [g.student for g in graded] == ['ana', 'ben', 'carl', 'zed']
    assert sorted(reported) == ['ana: 3/3', 'ben: 3/3', 'carl: 0/3',
                                'note: zed is not on the roster; graded anyway', 'zed: 3/3']
    assert graded[2] == Graded('carl', [('not run', CheckResult(False, 'no submission'))] * 2,
                               ['no submission'])
    rows = out.read_text().splitlines()
    assert rows[1:] == ['ana,3,3,100.0,pass,pass', 'ben,3,3,100.0,pass,pass',
                        'carl,0,3,0.0,not run,not run', 'zed,3,3,100.0,pass,pass']
    feedback = out.parent / 'feedback'
    assert sorted(os.listdir(feedback)) == ['ana.txt', 'ben.txt', 'carl.txt', 'zed.txt']
    assert (feedback / 'carl.txt').read_text().splitlines()[1] == 'note: no submission'
    settings = calls[0]['settings']
    assert settings == Settings(default_timeout(FIRE, 10.0), 10.0, 2048, False, False)
    assert {c['request']['cells'][0][1] for c in calls} == {'a = 1', 'b = 2', 'z = 3'}
    # ben again, failing now: ben's row is replaced and kept in the history
    stand_in(monkeypatch, b'')
    again = grade_folder(str(subs), 'fire', out=str(out), students=['ben'], report=print,
                         timeout=5, check_timeout=1, memory_mb=300,
                         feedback=str(tmp_path / 'fb'))
    assert [g.student for g in again] == ['ben']
    assert again[0].notes == [] and again[0].results[0][1].message.startswith(
        'not run: the submission\'s process stopped before this check')
    rows = out.read_text().splitlines()
    assert rows[2] == 'ben,0,3,0.0,not run,not run' and len(rows) == 5
    history = (out.parent / 'grades-history.csv').read_text().splitlines()
    assert [line.split(',', 1)[1] for line in history[1:]] == ['ben,3,3,100.0,pass,pass']
    assert os.listdir(tmp_path / 'fb') == ['ben.txt']


def test_one_students_grader_failure_stops_no_one_else(tmp_path, monkeypatch):
    subs = tmp_path / 'subs'
    subs.mkdir()
    (subs / 'ana.py').write_text('')
    (subs / 'ben.py').write_text('')

    def run(files, request, kit, settings, max_bytes):
        if files[0][0] == 'ana.py':
            raise OSError('no memory for a pipe')
        return Collected(passing(), '', False, False, 0)

    monkeypatch.setattr(grade, 'run_submission', run)
    graded = grade_folder(str(subs), 'fire', out=str(tmp_path / 'g.csv'), trust=True,
                          report=lambda line: None)
    why = ('the grader could not grade this submission (OSError: no memory for a pipe); grade '
           'it again')
    assert graded[0] == Graded('ana', [('not run', CheckResult(False, why))] * 2, [why])
    assert [status for status, _ in graded[1].results] == ['pass', 'pass']


def test_without_a_sandbox_nothing_is_graded(tmp_path, monkeypatch):
    monkeypatch.setattr(grade, 'sandbox_problem', lambda: 'no bwrap here')
    calls = stand_in(monkeypatch)
    with pytest.raises(grade.SandboxUnavailable, match='^no bwrap here$'):
        grade_folder(str(tmp_path), 'fire', out=str(tmp_path / 'g.csv'))
    assert calls == [] and not (tmp_path / 'g.csv').exists()


def test_the_sandboxed_run_gets_its_files_and_request_as_memory_files(monkeypatch):
    seen = {}

    def collect(command, pass_fds, results_fd, timeout, max_bytes, cwd=None, env=None):
        seen.update(command=command, timeout=timeout, max_bytes=max_bytes,
                    request_fd=str(pass_fds[0]), write_end=str(pass_fds[1]),
                    fds=[os.read(fd, 100) for fd in pass_fds[:1] + pass_fds[2:]])
        for fd in pass_fds:
            os.close(fd)
        os.close(results_fd)
        return 'collected'

    monkeypatch.setattr(grade, 'collect', collect)
    files = [('ana.py', b'a = 1'), ('helpers.py', b'h = 2')]
    assert run_submission(files, b'the request', '/k', SETTINGS, 1234) == 'collected'
    assert seen['timeout'] == 42.5 and seen['max_bytes'] == 1234
    assert seen['fds'] == [b'the request', b'a = 1', b'h = 2']
    command = seen['command']
    assert command[:2] == ['bwrap', '--unshare-all']
    at = command.index('/kit')
    assert command[at - 2:at + 1] == ['--ro-bind', '/k', '/kit']
    assert command.index('/submission/ana.py') < command.index('/submission/helpers.py')
    assert command[command.index('/grading/request') - 2] == '--ro-bind-data'
    assert command[command.index('/grading/request') - 1] == seen['request_fd']
    assert command[-1] == seen['write_end']
    for path in hidden_packages():
        assert command[command.index(path) - 1] == '--tmpfs'
    run_submission(files, b'the request', '/k', SETTINGS._replace(allow_library=True), 1)
    command = seen['command']
    assert command[command.index('/kit/d2lnets') - 2:command.index('/kit/d2lnets') + 1] == [
        '--ro-bind', os.path.join(LIBRARY_ROOT, 'd2lnets'), '/kit/d2lnets']
    assert not any(path in command for path in hidden_packages())


def test_a_trusted_run_sees_its_files_and_the_kit_or_the_library(monkeypatch):
    seen = []

    def collect(command, pass_fds, results_fd, timeout, max_bytes, cwd=None, env=None):
        scratch = os.path.dirname(cwd)
        with open(command[-2], 'rb') as f:
            request = f.read()
        seen.append({'command': command, 'cwd': cwd, 'env': env, 'request': request,
                     'files': {n: open(os.path.join(cwd, n)).read() for n in os.listdir(cwd)},
                     'scratch': scratch, 'timeout': timeout, 'max_bytes': max_bytes,
                     'write_end': str(pass_fds[0])})
        for fd in pass_fds + [results_fd]:
            os.close(fd)
        return 'collected'

    monkeypatch.setattr(grade, 'collect', collect)
    trusted = SETTINGS._replace(trust=True)
    assert run_submission([('ana.py', b'a = 1')], b'req', '/k', trusted, 99) == 'collected'
    run_submission([], b'req', '/k', trusted._replace(allow_library=True), 99)
    with monkeypatch.context() as without_path:
        without_path.delenv('PATH')
        run_submission([], b'req', '/k', trusted, 99)
    first, second, third = seen
    assert third['env']['PATH'] == '/usr/bin'   # what a run without PATH is given
    assert first['command'][:-2] == [sys.executable, '-s', '-B', '-m',
                                     'd2lnets.classroom.runner']
    assert first['command'][-1] == first['write_end']
    assert first['command'][-2] == os.path.join(first['scratch'], 'request')
    assert first['request'] == b'req' and first['files'] == {'ana.py': 'a = 1'}
    assert os.path.basename(first['cwd']) == 'submission'
    assert os.path.basename(first['scratch']).startswith('d2lnets-grade-')
    assert not os.path.exists(first['scratch'])           # removed after the run
    assert first['env']['PYTHONPATH'] == '/k' and first['env']['HOME'] == first['cwd']
    assert first['env']['PATH'] == os.environ.get('PATH', '/usr/bin')
    assert first['env']['OMP_NUM_THREADS'] == '1'
    assert (first['timeout'], first['max_bytes']) == (42.5, 99)
    assert second['env']['PYTHONPATH'] == LIBRARY_ROOT


def test_the_kit_or_with_the_library_allowed_the_library_and_its_chapters(tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)      # the library is found where it is, not where we run
    assert kit_mounts('/k', False) == [('/k', '/kit')]
    assert kit_mounts('/k', True) == [(os.path.join(LIBRARY_ROOT, 'd2lnets'), '/kit/d2lnets'),
                                      (os.path.join(LIBRARY_ROOT, 'chapters'),
                                       '/kit/chapters')]


def test_usable_cores_are_those_this_process_may_run_on(monkeypatch):
    assert usable_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0})
    assert usable_cores() == 1
    monkeypatch.delattr(os, 'sched_getaffinity')      # macOS
    monkeypatch.setattr(os, 'cpu_count', lambda: 3)
    assert usable_cores() == 3
    monkeypatch.setattr(os, 'cpu_count', lambda: None)
    assert usable_cores() == 1


def test_feedback_is_written_to_a_hidden_file_beside_it_then_renamed(tmp_path, monkeypatch):
    monkeypatch.setattr('tempfile.tempdir', str(tmp_path / 'elsewhere'))
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, 'replace', lambda src, dst: (renamed.append(src), real(src, dst)))
    grade._write_feedback(str(tmp_path), Graded('ana', [('pass', CheckResult(True, 'ok'))] * 2,
                                                []), FIRE)
    (temporary,) = renamed
    assert os.path.dirname(temporary) == str(tmp_path)
    assert os.path.basename(temporary).startswith('.feedback-')
    assert (tmp_path / 'ana.txt').read_text() == feedback_text(
        FIRE, Graded('ana', [('pass', CheckResult(True, 'ok'))] * 2, []))


def test_the_command_line_reads_its_arguments_and_a_short_check_time(tmp_path, monkeypatch,
                                                                    capsys):
    got = {}
    monkeypatch.setattr(grade, 'grade_folder', lambda *args, **kwargs: got.update(args=args))
    monkeypatch.setattr(sys, 'argv', ['grade', str(tmp_path), '--assignment', 'fire',
                                      '--check-timeout', '0.5'])
    main()
    assert got['args'][:2] == (str(tmp_path), 'fire') and got['args'][5] == 0.5


def test_the_similarity_report_without_copydetect_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'copydetect', None)
    monkeypatch.delitem(sys.modules, 'd2lnets.classroom.similarity', raising=False)
    with pytest.raises(SystemExit) as stop:
        main(['similarity', 'subs', '--assignment', 'fire'])
    assert str(stop.value).startswith('python -m d2lnets.grade similarity needs copydetect (')
    assert str(stop.value).endswith('): pip install "d2lnets[teach]"')


@pytest.mark.parametrize('options, words', [
    (['--timeout', '0'], '--timeout and --check-timeout must be positive'),
    (['--timeout', '-1'], '--timeout and --check-timeout must be positive'),
    (['--check-timeout', '0'], '--timeout and --check-timeout must be positive'),
    (['-j', '0'], '-j must be at least 1 and --memory at least 256 (MiB)'),
    (['--memory', '255'], '-j must be at least 1 and --memory at least 256 (MiB)'),
])
def test_the_command_line_refuses_bad_numbers(tmp_path, capsys, options, words):
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), '--assignment', 'fire'] + options)
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f'python -m d2lnets.grade: error: {words}'


def test_the_command_line_grades_with_every_option(tmp_path, capsys, monkeypatch):
    got = {}

    def fake(*args, **kwargs):
        got.update(args=args, kwargs=kwargs)

    monkeypatch.setattr(grade, 'grade_folder', fake)
    main([str(tmp_path), '--assignment', 'fire', '--out', 'o.csv', '--feedback', 'fb',
          '--timeout', '60', '--check-timeout', '2', '-j', '3', '--roster', 'r.csv',
          '--students', 'ana', 'ben', '--memory', '256', '--trust-submissions',
          '--allow-library'])
    assert got == {'args': (str(tmp_path), 'fire', 'o.csv', 'fb', 60.0, 2.0),
                   'kwargs': {'jobs': 3, 'roster': 'r.csv', 'students': ['ana', 'ben'],
                              'memory_mb': 256, 'trust': True, 'allow_library': True}}
    assert capsys.readouterr().out == 'wrote o.csv\n'
    main([str(tmp_path), '--assignment', 'fire', '--timeout', '1e-3', '--memory', '256',
          '-j', '1'])
    assert got == {'args': (str(tmp_path), 'fire', 'grades.csv', None, 0.001, 10.0),
                   'kwargs': {'jobs': 1, 'roster': None, 'students': None,
                              'memory_mb': 256, 'trust': False, 'allow_library': False}}
    main([str(tmp_path), '--assignment', 'fire'])
    assert got['args'][4:] == (None, 10.0) and got['kwargs']['jobs'] is None
    assert got['kwargs']['memory_mb'] == 2048


def test_the_command_line_turns_a_grading_error_into_one_line(tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError('grades.csv is not a gradebook of fire')

    monkeypatch.setattr(grade, 'grade_folder', fail)
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path), '--assignment', 'fire'])
    assert stop.value.code == 2
    assert capsys.readouterr().err == ('python -m d2lnets.grade: error: grades.csv is not a '
                                       'gradebook of fire\n')


def test_the_export_command_line(tmp_path, capsys):
    roster = tmp_path / 'students.csv'
    roster.write_text('student,name,id,sis_user_id,sis_login_id,section,email\n'
                      'ana,Ana,1,S1,ana@x,A,ana@x\n')
    write_rows(str(tmp_path / 'g.csv'), FIRE, {'ana': ['ana', '3', '3', '100.0', 'pass',
                                                      'pass']})
    main(['export', 'moodle', str(tmp_path / 'g.csv'), '--assignment', 'fire', '--roster',
          str(roster), '--out', str(tmp_path / 'm.csv')])
    assert capsys.readouterr().out == f'wrote {tmp_path / "m.csv"}\n'
    assert (tmp_path / 'm.csv').read_text().splitlines() == [
        'Email address,ID number,Write the Fire module', 'ana@x,1,3']
    with pytest.raises(SystemExit) as stop:
        main(['export', 'canvas', str(tmp_path / 'g.csv'), '--assignment', 'fire',
              '--roster', str(roster), '--out', str(tmp_path / 'c.csv')])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        'python -m d2lnets.grade export: error: a Canvas export needs the assignment\'s Canvas '
        'id: --canvas-id (the number in its address)\n')
    with pytest.raises(SystemExit):
        main(['export', 'moodle', str(tmp_path / 'g.csv'), '--assignment', 'fire'])
    assert 'the following arguments are required: --roster, --out' in capsys.readouterr().err


EXPECTATIONS = os.path.join(os.path.dirname(__file__), 'expectations')


@pytest.mark.parametrize('command, stored', [([], 'grade_help.txt'),
                                             (['export'], 'grade_export_help.txt')])
def test_the_help_names_every_option(capsys, monkeypatch, command, stored):
    monkeypatch.setenv('COLUMNS', '80')
    with pytest.raises(SystemExit) as info:
        main(command + ['--help'])
    assert info.value.code == 0
    with open(os.path.join(EXPECTATIONS, stored)) as f:
        assert capsys.readouterr().out.replace('optional arguments:', 'options:') == f.read()


@pytest.mark.parametrize('command, missing', [
    ([], '--assignment'), (['export', 'canvas', 'g.csv', '--roster', 'r', '--out', 'o'],
                           '--assignment'),
    (['export', 'canvas', 'g.csv', '--assignment', 'fire', '--out', 'o'], '--roster'),
    (['export', 'canvas', 'g.csv', '--assignment', 'fire', '--roster', 'r'], '--out')])
def test_the_options_without_a_default_are_required(tmp_path, capsys, command, missing):
    with pytest.raises(SystemExit) as info:
        main(command or [str(tmp_path)])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f'error: the following arguments are required: {missing}')


def test_grading_writes_beside_where_it_runs_and_leaves_no_kit_behind(tmp_path, monkeypatch):
    subs = tmp_path / 'subs'
    subs.mkdir()
    (subs / 'ana.py').write_text('a = 1')
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    monkeypatch.setattr('tempfile.tempdir', str(scratch))
    monkeypatch.chdir(tmp_path)
    calls = stand_in(monkeypatch, passing())
    for _ in range(2):      # the second time, the feedback folder is there already
        grade_folder(str(subs), 'fire', trust=True, report=lambda line: None)
    assert os.path.basename(calls[0]['kit']).startswith('d2lnets-kit-')
    assert os.listdir(scratch) == []
    assert (tmp_path / 'grades.csv').read_text().splitlines()[1] == 'ana,3,3,100.0,pass,pass'
    assert os.listdir(tmp_path / 'feedback') == ['ana.txt']
