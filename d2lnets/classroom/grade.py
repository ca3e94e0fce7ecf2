"""Grade a folder of submissions: ``python -m d2lnets.grade SUBMISSIONS/ --assignment residual``.

Each student's code (`submissions`: the files under their name) runs in a
bubblewrap sandbox of its own (`sandbox`) with only the kit of `kit` as
d2lnets -- no reference, no network, no view of the other submissions, the
gradebook or the feedback -- under resource limits and a time limit. It hands
back, on a pipe only the grader reads, the outputs of the student's blocks
on inputs and weights the grader chose; the grader checks their form
(`received`) and judges them against the references it computes itself
(`checker.judge`). Where no sandbox can start, grading is refused unless the
teacher passes ``--trust-submissions``.

Writes ``--out`` (the gradebook, `gradebook`: merged with the rows already
there, replaced rows kept in its history) and one feedback file per student
in ``--feedback`` (default: ``feedback`` beside the gradebook).
"""
import argparse
import math
import os
import shutil
import sys
import tempfile
import threading
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

from . import channel
from .assignments import ASSIGNMENTS, get_assignment
from .checker import CheckResult
from .gradebook import (Graded, export, keep_in_history, points, read_roster, read_rows, row,
                        write_rows)
from .kit import build_kit
from .observe import observe
from .received import quoted, verdicts
from .sandbox import bwrap_command, collect, runner_environment, sandbox_problem
from .submissions import find_submissions, read_submission

Settings = namedtuple('Settings', 'timeout check_timeout memory_mb trust allow_library')
DEFAULT_CHECK_TIMEOUT = 10.0
DEFAULT_MEMORY_MB = 2048      # address space of each process of a submission
SCRATCH_BYTES = 256 * 2 ** 20  # its /tmp, and its working folder, each
PROCESSES, FILE_BYTES, OPEN_FILES = 64, 64 * 2 ** 20, 256
START_UP_SECONDS = 30.0       # a sandbox, Python and MXNet, on a loaded laptop
LIBRARY_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_timeout(assignment, check_timeout):
    """Seconds for a whole submission: start-up, then a check's limit for each
    check and for about four cells."""
    return START_UP_SECONDS + check_timeout * (len(assignment.checks) + 4)


def reference_observations(assignment):
    """The reference's observation for each check of `assignment`."""
    return [observe(c.reference, c.args, c.input_shape, assignment.kind)
            for c in assignment.checks]


def _request(assignment, references, cells, settings):
    limits = {'memory': settings.memory_mb * 2 ** 20, 'cpu': math.ceil(settings.timeout),
              'processes': PROCESSES, 'file_size': FILE_BYTES, 'open_files': OPEN_FILES}
    checks = [{'target': c.target, 'args': repr(c.args), 'input_shape': list(c.input_shape),
               'call': c.call, 'weights': r['weights'], 'layout': r['layout']}
              for c, r in zip(assignment.checks, references)]
    return channel.encode({'cells': cells, 'limits': limits, 'timeout': settings.check_timeout,
                           'kind': assignment.kind, 'checks': checks})


def results_limit(references):
    """Bytes a submission may hand back: room for eight times the reference's
    observations (more layers, wrong shapes), and 1 MiB."""
    size = sum(len(channel.encode({k: r[k] for k in ('steps', 'outputs')}))
               for r in references)
    return 2 ** 20 + 8 * size


def _memory_file(name, data):
    fd = os.memfd_create(name)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def run_submission(files, request, kit, settings, max_bytes):
    """Run the runner on one submission, sandboxed unless `settings.trust`;
    the `sandbox.Collected`."""
    read_end, write_end = os.pipe()
    if settings.trust:
        return _run_trusted(files, request, kit, settings, max_bytes, read_end, write_end)
    request_fd = _memory_file('request', request)
    file_fds = [(_memory_file(name, data), name) for name, data in files]
    command = bwrap_command(kit_mounts(kit, settings.allow_library), request_fd, file_fds,
                            write_end, SCRATCH_BYTES, hide_library=not settings.allow_library)
    return collect(command, [request_fd, write_end] + [fd for fd, _ in file_fds], read_end,
                   settings.timeout, max_bytes)


def _run_trusted(files, request, kit, settings, max_bytes, read_end, write_end):
    scratch = tempfile.mkdtemp(prefix='d2lnets-grade-')
    try:
        home = os.path.join(scratch, 'submission')
        os.makedirs(home)
        for name, data in files:
            with open(os.path.join(home, name), 'wb') as f:
                f.write(data)
        with open(os.path.join(scratch, 'request'), 'wb') as f:
            f.write(request)
        command = [sys.executable, '-s', '-B', '-m', 'd2lnets.classroom.runner',
                   os.path.join(scratch, 'request'), str(write_end)]
        packages = LIBRARY_ROOT if settings.allow_library else kit
        env = dict(runner_environment(packages, home), PATH=os.environ.get('PATH', '/usr/bin'))
        return collect(command, [write_end], read_end, settings.timeout, max_bytes, cwd=home,
                       env=env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _attempt_note(attempts):
    names = [a for a in attempts if isinstance(a, str)
             and a.replace('.', '').replace('_', '').isalnum() and len(a) < 80][:5]
    if not names:
        return []
    return [f'the submission tried to use {", ".join(names)}: the library\'s references are '
            f'left out while grading, so what depends on them fails (answers must be the '
            f'student\'s own; the teacher may allow the library with --allow-library)']


def _notes_from(messages):
    for message in messages:
        if isinstance(message, dict) and 'notes' in message:
            notes = message['notes'] if isinstance(message['notes'], list) else []
            attempts = message.get('attempts')
            return ([f'the submission\'s run reported: {quoted(n)}' for n in notes[:20]
                     if isinstance(n, str)]
                    + _attempt_note(attempts if isinstance(attempts, list) else []))
    return []


def grade_submission(student, paths, assignment, references, kit, settings):
    """Run one student's code in its sandbox and judge every check; a `Graded`."""
    if not paths:
        return _all_failed(student, assignment, 'no notebook or .py file found')
    try:
        files, cells = read_submission(paths)
    except ValueError as err:
        return _all_failed(student, assignment, str(err))
    request = _request(assignment, references, cells, settings)
    run = run_submission(files, request, kit, settings, results_limit(references))
    messages, problem = channel.read_messages(run.results)
    notes = _notes_from(messages)
    if run.overflowed:
        notes.append(f'the submission\'s run handed back more than {len(run.results)} bytes '
                     f'of results: the rest was discarded and the run stopped')
    if problem:
        notes.append(f'the submission\'s results end in a malformed message ({problem})')
    if run.timed_out:
        notes.append(f'the submission ran past its {settings.timeout:g} s limit and was '
                     f'stopped')
        ended = f'the submission used up its {settings.timeout:g} s'
    else:
        last = [line for line in run.output.splitlines() if line.strip()][-1:]
        ended = ('the submission\'s process stopped before this check; its last output '
                 f'line was: {quoted(last[0]) if last else "(none)"}')
    calls = [c.call for c in assignment.checks]
    return Graded(student, verdicts(messages, calls, references, ended), notes)


def _all_failed(student, assignment, why):
    return Graded(student, [('not run', CheckResult(False, why))] * len(assignment.checks),
                  [why])


def feedback_text(assignment, graded):
    """What a student reads: the score, notes on the run, one line per check."""
    earned, possible = points(assignment, graded)
    passed = sum(status == 'pass' for status, _ in graded.results)
    lines = [f'{assignment.title} ({assignment.name}): {passed} of {len(graded.results)} '
             f'checks pass, {earned} of {possible} points']
    lines += [f'note: {note}' for note in graded.notes]
    for check, (status, result) in zip(assignment.checks, graded.results):
        hidden = 'hidden: ' if check.hidden else ''
        lines.append(f'{status.upper()} {hidden}{check.label}: {result.message}')
    return '\n'.join(lines) + '\n'


def _write_feedback(folder, graded, assignment):
    handle, temporary = tempfile.mkstemp(dir=folder, prefix='.feedback-')
    with os.fdopen(handle, 'w') as f:
        f.write(feedback_text(assignment, graded))
    os.replace(temporary, os.path.join(folder, f'{graded.student}.txt'))


def grade_folder(folder, assignment_name, out='grades.csv', feedback=None, timeout=None,
                 check_timeout=DEFAULT_CHECK_TIMEOUT, report=print, jobs=None, roster=None,
                 students=None, memory_mb=DEFAULT_MEMORY_MB, trust=False, allow_library=False):
    """Grade the submissions in `folder` (only `students`, when given; with a
    `roster`, every student on it); merge the gradebook `out` and write the
    feedback files. Returns the `Graded` of this run, in name order."""
    assignment = get_assignment(assignment_name)
    if not trust:
        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(problem)
    timeout = timeout or default_timeout(assignment, check_timeout)
    settings = Settings(timeout, check_timeout, memory_mb, trust, allow_library)
    feedback = feedback or os.path.join(os.path.dirname(os.path.abspath(out)), 'feedback')
    os.makedirs(feedback, exist_ok=True)
    found = find_submissions(folder)
    if roster is not None:
        on_roster = [person['student'] for person in read_roster(roster)]
        for student in sorted(set(found) - set(on_roster)):
            report(f'note: {student} is not on the roster; graded anyway')
        found = {s: found.get(s) for s in sorted(set(on_roster) | set(found))}
    if students:
        found = {s: found.get(s) for s in students}
    previous = read_rows(out, assignment)
    references = reference_observations(assignment)
    scratch = tempfile.mkdtemp(prefix='d2lnets-kit-')
    lock, done = threading.Lock(), {}
    try:
        kit = build_kit(scratch)

        def one(student):
            paths = found[student]
            try:
                graded = (_all_failed(student, assignment, 'no submission') if paths is None
                          else grade_submission(student, paths, assignment, references, kit,
                                                settings))
            except Exception as err:  # noqa: BLE001  (one student's fault stops no one else)
                graded = _all_failed(student, assignment, f'the grader could not grade this '
                                                          f'submission ({type(err).__name__}: '
                                                          f'{err}); grade it again')
            with lock:
                done[student] = graded
                _write_feedback(feedback, graded, assignment)
                rows = dict(previous, **{s: row(assignment, g) for s, g in done.items()})
                write_rows(out, assignment, rows)   # after each student: nothing is lost
                keep_in_history(out, assignment, [previous[student]]
                                if student in previous else [])
                earned, possible = points(assignment, graded)
                report(f'{student}: {earned}/{possible}')
            return graded

        with ThreadPoolExecutor(max_workers=jobs or usable_cores()) as pool:
            list(pool.map(one, found))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [done[s] for s in found]


def kit_mounts(kit, allow_library):
    """(folder, place) pairs of the d2lnets a submission sees: the kit, or with
    `allow_library` the library itself and its chapters."""
    if not allow_library:
        return [(kit, '/kit')]
    return [(os.path.join(LIBRARY_ROOT, name), f'/kit/{name}')
            for name in ('d2lnets', 'chapters') if os.path.isdir(os.path.join(LIBRARY_ROOT, name))]


def usable_cores():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (
        os.cpu_count() or 1)


class SandboxUnavailable(RuntimeError):
    """No sandbox can start here; the message says what to install."""


def _parser():
    parser = argparse.ArgumentParser(
        prog='python -m d2lnets.grade',
        description='Run every submission in a folder, each in its own bubblewrap sandbox, '
                    'against an assignment\'s public and hidden checks; merge the gradebook '
                    '(CSV) and write one feedback file per student. Also: python -m '
                    'd2lnets.grade export ... (for Canvas or Moodle) and python -m '
                    'd2lnets.grade similarity ... (near-identical submissions).')
    parser.add_argument('submissions', help='folder of notebooks or .py files (or of one '
                                            'folder per student)')
    parser.add_argument('--assignment', required=True, choices=sorted(ASSIGNMENTS))
    parser.add_argument('--timeout', type=float,
                        help='seconds for one whole submission (default: 30 plus '
                             '--check-timeout for each check and for four cells)')
    parser.add_argument('--check-timeout', type=float, default=DEFAULT_CHECK_TIMEOUT,
                        help='seconds for each cell and each check (default 10)')
    parser.add_argument('--memory', type=int, default=DEFAULT_MEMORY_MB,
                        help='MiB of address space for each process of a submission '
                             '(default 2048)')
    parser.add_argument('-j', '--jobs', type=int,
                        help='submissions graded at once (default: the usable cores)')
    parser.add_argument('--roster', help='CSV with a "student" column: every student on it '
                                         'gets a row, "no submission" when there is none')
    parser.add_argument('--students', nargs='+', metavar='NAME',
                        help='grade only these students (re-grading: merged into --out)')
    parser.add_argument('--out', default='grades.csv', help='the gradebook (default '
                                                            'grades.csv)')
    parser.add_argument('--feedback', help='folder for the feedback files (default: '
                                           'feedback/ beside the gradebook)')
    parser.add_argument('--trust-submissions', action='store_true',
                        help='run the submissions WITHOUT a sandbox (only for code you trust)')
    parser.add_argument('--allow-library', action='store_true',
                        help='let submissions import d2lnets\'s own blocks (the references)')
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['export']:
        return export_main(argv[1:])
    if argv[:1] == ['similarity']:
        try:   # copydetect comes with the [teach] extra: only this report needs it
            from .similarity import main as similarity_main
        except ImportError as err:
            raise SystemExit(f'python -m d2lnets.grade similarity needs copydetect ({err}): '
                             f'pip install "d2lnets[teach]"') from None
        return similarity_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if not os.path.isdir(args.submissions):
        parser.error(f'{args.submissions} is not a folder: give the folder of submissions')
    if (args.timeout is not None and args.timeout <= 0) or args.check_timeout <= 0:
        parser.error('--timeout and --check-timeout must be positive')
    if args.jobs is not None and args.jobs < 1 or args.memory < 256:
        parser.error('-j must be at least 1 and --memory at least 256 (MiB)')
    try:
        grade_folder(args.submissions, args.assignment, args.out, args.feedback, args.timeout,
                     args.check_timeout, jobs=args.jobs, roster=args.roster,
                     students=args.students, memory_mb=args.memory,
                     trust=args.trust_submissions, allow_library=args.allow_library)
    except (SandboxUnavailable, ValueError, OSError) as err:
        parser.exit(2, f'{parser.prog}: error: {err}\n')
    print(f'wrote {args.out}')


def export_main(argv):
    parser = argparse.ArgumentParser(
        prog='python -m d2lnets.grade export',
        description='Write a gradebook as Canvas or Moodle imports it.')
    parser.add_argument('lms', choices=('canvas', 'moodle'))
    parser.add_argument('gradebook', help='the CSV that python -m d2lnets.grade wrote')
    parser.add_argument('--assignment', required=True, choices=sorted(ASSIGNMENTS))
    parser.add_argument('--roster', required=True, help='CSV with columns student, name, id, '
                                                        'sis_user_id, sis_login_id, section, '
                                                        'email (those the LMS needs)')
    parser.add_argument('--canvas-id', default='', help='the assignment\'s id in Canvas')
    parser.add_argument('--out', required=True, help='the CSV to import')
    args = parser.parse_args(argv)
    try:
        export(args.gradebook, get_assignment(args.assignment), args.roster, args.lms,
               args.out, args.canvas_id)
    except (ValueError, OSError) as err:
        parser.exit(2, f'{parser.prog}: error: {err}\n')
    print(f'wrote {args.out}')
