"""The student's side of grading: run one submission's code, observe each check.

The grader starts ``python -m d2lnets.classroom.runner ASSIGNMENT WORK_DIR
CHECK_TIMEOUT`` in a fresh process (without network where ``unshare -n``
works) whose current directory is a temporary copy of that one submission.
WORK_DIR holds ``code.json`` (the submission's cells: [label, source]) and
``reference-N.npz`` (the weights of check N). The runner

1. blocks network connections by an audit hook (the second line of defence);
2. runs each cell with `limits.run_limited` first (a cell that loops is
   skipped, and noted), then for real, so the names it defines exist here (a
   cell that raises keeps, as in Jupyter, what it defined before the error);
3. observes each check in its own `run_limited` child, and writes
   ``check-N.npz`` (the observation, or the error in words) as soon as it has it.

It judges nothing: the grader, which the student's code never runs in,
compares the observations with the reference.
"""
import json
import os
import sys

from .assignments import get_assignment
from .checker import observe
from .limits import StudentCodeError, run_limited
from .records import load_observation, save_observation

_NETWORK_EVENTS = ('socket.connect', 'socket.sendto', 'socket.getaddrinfo', 'urllib.Request')


def _no_network(event, args):
    if event in _NETWORK_EVENTS:
        raise PermissionError('no network while grading')


def _compile(label, source):
    return compile(source, f'<student:{label}>', 'exec')


def _probe(code, namespace):
    exec(code, namespace)  # noqa: S102  (in a forked child, under a time limit)


def run_cells(cells, namespace, timeout):
    """Run each (label, source) in `namespace` as Jupyter would, except that a
    cell that does not finish in time (or crashes) is skipped; return notes on
    the cells that raised or were skipped."""
    notes = []
    for label, source in cells:
        try:
            code = _compile(label, source)
            run_limited(_probe, code, namespace, timeout=timeout, what=label)
        except SyntaxError as err:
            notes.append(f'{label} has a syntax error: {err.msg} (line {err.lineno}); skipped')
            continue
        except StudentCodeError as err:
            if not err.finished:
                notes.append(f'{err}; skipped')
                continue
            notes.append(f'{err}; what it defined before that is kept')
        try:
            exec(code, namespace)  # noqa: S102  (it just finished within the limit in a child)
        except BaseException:  # noqa: B036, S110  (it raises again, even exit: noted above)
            pass
    return notes


def observe_checks(assignment, namespace, work_dir, timeout):
    """Observe every check of `assignment` on `namespace`, one file each."""
    for number, check in enumerate(assignment.checks):
        reference = load_observation(os.path.join(work_dir, f'reference-{number}.npz'))
        student = namespace.get(check.target)
        if not callable(student):
            seen = {'error': f'no {check.target} defined: define it with that name'}
        else:
            try:
                seen = run_limited(observe, student, check.args, check.input_shape,
                                   assignment.kind, reference, timeout=timeout, what=check.call)
            except StudentCodeError as err:
                seen = {'error': str(err)}
        save_observation(seen, os.path.join(work_dir, f'check-{number}.npz'))


def main(argv=None):
    name, work_dir, timeout = argv or sys.argv[1:]
    assignment = get_assignment(name)
    with open(os.path.join(work_dir, 'code.json')) as f:
        cells = json.load(f)
    sys.addaudithook(_no_network)
    namespace = {'__name__': '__main__'}
    notes = run_cells(cells, namespace, float(timeout))
    with open(os.path.join(work_dir, 'notes.json'), 'w') as f:
        json.dump(notes, f)
    observe_checks(assignment, namespace, work_dir, float(timeout))


if __name__ == '__main__':
    main()
