"""Grade a folder of submissions: ``python -m d2lnets.grade SUBMISSIONS/ --assignment residual``.

Each submission (a notebook or .py file, or a folder holding one; the
student's name is the file's or the folder's) is copied alone into a
temporary folder and run there by `runner` in a fresh Python process: without
network (``unshare -n`` where the system allows it, and an audit hook that
refuses connections in any case), killed with all its children after
``--timeout`` seconds. Every cell and every check has its own limit
(``--check-timeout``, by `limits.run_limited`): a cell or a function that
loops costs that cell or check only. The checks are judged here, in the
grader's process, from what the student's process observed (`records`);
the references come from `d2lnets.models` in this process.

Writes ``--out`` (CSV: student, score, out_of, one column per check: pass,
fail, error, timeout or not run) and one feedback file per student in
``--feedback`` (default: a ``feedback`` folder beside the CSV). A submission
that hangs, crashes or defines nothing is graded like any other.
"""
import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import namedtuple

from .assignments import ASSIGNMENTS, get_assignment
from .checker import CheckResult, judge, observe
from .records import load_observation, save_observation

SUFFIXES = ('.ipynb', '.py')
Graded = namedtuple('Graded', 'student results notes')  # results: [(status, CheckResult)]
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_submissions(folder):
    """(student, path or None) for each submission in `folder`, by name."""
    found = []
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.startswith('.'):
            continue
        if os.path.isdir(path):
            inside = sorted(f for f in os.listdir(path) if f.endswith(SUFFIXES))
            found.append((entry, os.path.join(path, inside[0]) if inside else None))
        elif entry.endswith(SUFFIXES):
            found.append((os.path.splitext(entry)[0], path))
    return found


def read_cells(path):
    """The submission's code as [label, source] pairs: a notebook's code cells
    ('cell 1', ...; IPython's %magic and !shell lines become `pass`), or a
    .py file whole. Raises ValueError on a notebook that cannot be read."""
    with open(path, encoding='utf-8', errors='replace') as f:
        text = f.read()
    if not path.endswith('.ipynb'):
        return [[os.path.basename(path), text]]
    try:
        cells = [c for c in json.loads(text)['cells'] if c.get('cell_type') == 'code']
        sources = [''.join(c['source']) if isinstance(c['source'], list) else c['source']
                   for c in cells]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f'the notebook cannot be read ({type(err).__name__}: {err})') from None
    return [[f'cell {number}', _without_magics(source)]
            for number, source in enumerate(sources, 1)]


def _without_magics(source):
    return '\n'.join('pass' if line.lstrip().startswith(('%', '!')) else line
                     for line in source.splitlines())


def reference_observations(assignment):
    """The reference's observation for each check of `assignment`."""
    return [observe(c.reference, c.args, c.input_shape, assignment.kind)
            for c in assignment.checks]


def can_unshare_network():
    """Whether `unshare -n` can start a process without network here."""
    try:
        return subprocess.run(['unshare', '-n', 'true'], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _student_env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONDONTWRITEBYTECODE='1')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get('PYTHONPATH')]))
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'):
        env[name] = 'http://127.0.0.1:9'   # the discard port: nothing answers
    return env


def _run_student(command, cwd, log_path, timeout):
    """Run `command` in its own process group; kill the group when it ends or
    after `timeout` seconds. Return whether it ran out of time."""
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(command, cwd=cwd, env=_student_env(), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            process.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # its group: it and the children it forked
            except ProcessLookupError:
                pass
            process.wait()
    return timed_out


def grade_submission(student, path, assignment, references, timeout=60.0, check_timeout=10.0,
                     isolate_network=True):
    """Run one submission and judge every check; a `Graded`."""
    if path is None:
        return _all_failed(student, assignment, 'not run', 'no notebook or .py file found')
    try:
        cells = read_cells(path)
    except ValueError as err:
        return _all_failed(student, assignment, 'not run', str(err))
    scratch = tempfile.mkdtemp(prefix='d2lnets-grade-')
    try:
        home, work = os.path.join(scratch, 'submission'), os.path.join(scratch, 'work')
        os.makedirs(home)
        os.makedirs(work)
        shutil.copy(path, home)
        with open(os.path.join(work, 'code.json'), 'w') as f:
            json.dump(cells, f)
        for number, reference in enumerate(references):
            save_observation({'weights': reference['weights'], 'layout': reference['layout']},
                             os.path.join(work, f'reference-{number}.npz'))
        command = ((['unshare', '-n'] if isolate_network else [])
                   + [sys.executable, '-m', 'd2lnets.classroom.runner', assignment.name, work,
                      str(check_timeout)])
        log = os.path.join(work, 'output.txt')
        timed_out = _run_student(command, home, log, timeout)
        notes = _reference_imports(cells) + _read_notes(work)
        if timed_out:
            notes.append(f'the submission ran past its {timeout:g} s limit and was stopped')
        results = [_result(work, number, reference, timed_out, timeout, log)
                   for number, reference in enumerate(references)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Graded(student, results, notes)


def _reference_imports(cells):
    """A note for the teacher where a cell imports from d2lnets beyond the classroom kit
    (it could hand in the reference itself, which passes every check)."""
    return [f'{label} imports from d2lnets ({line.strip()}): check that it does not use '
            f'the reference' for label, source in cells for line in source.splitlines()
            if ('d2lnets.models' in line or line.strip().startswith('from d2lnets import')
                or 'import d2lnets.models' in line)][:1]


def _all_failed(student, assignment, status, why):
    return Graded(student, [(status, CheckResult(False, why))] * len(assignment.checks), [why])


def _read_notes(work):
    try:
        with open(os.path.join(work, 'notes.json')) as f:
            return [str(note) for note in json.load(f)]
    except (OSError, ValueError):
        return []


def _result(work, number, reference, timed_out, timeout, log):
    path = os.path.join(work, f'check-{number}.npz')
    if not os.path.exists(path):
        if timed_out:
            return 'not run', CheckResult(False, f'not run: the submission used up its '
                                                 f'{timeout:g} s')
        return 'not run', CheckResult(False, f'not run: the student\'s process stopped '
                                             f'({_last_line(log)})')
    try:
        seen = load_observation(path)
        if seen['error']:
            status = 'timeout' if 'did not finish within' in seen['error'] else 'error'
            return status, CheckResult(False, seen['error'])
        result = judge(reference, seen)
    except Exception as err:  # noqa: BLE001  (the file came from the student's process)
        return 'error', CheckResult(False, f'unreadable result ({type(err).__name__})')
    return ('pass' if result.passed else 'fail'), result


def _last_line(log):
    with open(log, errors='replace') as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1][:200] if lines else 'no output'


def _column(check):
    return f'{"hidden: " if check.hidden else ""}{check.label}'


def write_csv(path, assignment, graded):
    """One row per student: student, score, out_of, then each check's status."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['student', 'score', 'out_of'] + [_column(c) for c in assignment.checks])
        for g in graded:
            statuses = [status for status, _ in g.results]
            writer.writerow([g.student, statuses.count('pass'), len(statuses)] + statuses)


def feedback_text(assignment, graded):
    """What a student reads: the score, notes on skipped cells, one line per check."""
    passed = sum(status == 'pass' for status, _ in graded.results)
    lines = [f'{assignment.title} ({assignment.name}): {passed} of {len(graded.results)} '
             f'checks pass']
    lines += [f'note: {note}' for note in graded.notes]
    for check, (status, result) in zip(assignment.checks, graded.results):
        lines.append(f'{status.upper()} {_column(check)}: {result.message}')
    return '\n'.join(lines) + '\n'


def grade_folder(folder, assignment_name, out='grades.csv', feedback=None, timeout=60.0,
                 check_timeout=10.0, report=print):
    """Grade every submission in `folder`; write the CSV and the feedback files."""
    assignment = get_assignment(assignment_name)
    feedback = feedback or os.path.join(os.path.dirname(os.path.abspath(out)), 'feedback')
    os.makedirs(feedback, exist_ok=True)
    references = reference_observations(assignment)
    isolate = can_unshare_network()
    if not isolate:
        report('note: unshare -n is not allowed here; student code runs with only the '
               'audit hook and unusable proxies keeping it off the network')
    graded = []
    for student, path in find_submissions(folder):
        g = grade_submission(student, path, assignment, references, timeout, check_timeout,
                             isolate)
        graded.append(g)
        with open(os.path.join(feedback, f'{student}.txt'), 'w') as f:
            f.write(feedback_text(assignment, g))
        write_csv(out, assignment, graded)   # after each student: nothing graded is lost
        report(f'{student}: {sum(s == "pass" for s, _ in g.results)}/{len(g.results)}')
    write_csv(out, assignment, graded)
    return graded


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m d2lnets.grade',
        description='Run every submission in a folder against an assignment\'s public and '
                    'hidden checks; write a CSV of scores and one feedback file per student.')
    parser.add_argument('submissions', help='folder of notebooks or .py files (or of one '
                                            'folder per student)')
    parser.add_argument('--assignment', required=True, choices=sorted(ASSIGNMENTS))
    parser.add_argument('--timeout', type=float, default=60.0,
                        help='seconds for one whole submission (default 60)')
    parser.add_argument('--check-timeout', type=float, default=10.0,
                        help='seconds for each cell and each check (default 10)')
    parser.add_argument('--out', default='grades.csv', help='the CSV (default grades.csv)')
    parser.add_argument('--feedback', help='folder for the feedback files (default: '
                                           'feedback/ beside the CSV)')
    args = parser.parse_args(argv)
    if not os.path.isdir(args.submissions):
        parser.error(f'{args.submissions} is not a folder: give the folder of submissions')
    if args.timeout <= 0 or args.check_timeout <= 0:
        parser.error('--timeout and --check-timeout must be positive')
    grade_folder(args.submissions, args.assignment, args.out, args.feedback, args.timeout,
                 args.check_timeout)
    print(f'wrote {args.out}')
