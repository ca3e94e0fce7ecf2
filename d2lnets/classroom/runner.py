"""The submission's side of grading, inside the sandbox: run its code, observe each check.

The grader starts ``python -m d2lnets.classroom.runner REQUEST RESULTS_FD``
inside bubblewrap (`sandbox`), with the kit of `kit` as its only d2lnets.
REQUEST is one `channel` message from the grader: the submission's cells
([label, source]), the resource limits, the time limit of a cell or a check,
and for each check the name to build, its arguments (as Python literals),
the input shape and the reference's weights. The runner

1. sets the resource limits (`set_limits`) before any student code runs;
2. runs each cell with `limits.run_limited` first (a cell that loops is
   skipped, and noted), then for real, so the names it defines exist here (a
   cell that raises keeps, as in Jupyter, what it defined before the error);
3. sends one message with its notes (and what the submission tried to reach
   of the library), then one per check: the observation (`observe`) of the
   student's block on the grader's input with the grader's weights, or
   'error' with the error in words, 'timeout', or 'missing'.

It judges nothing, and the grader trusts none of it: a submission can
write anything on RESULTS_FD (it runs in this process), so the grader
validates every message (`received`) and compares the outputs with the
reference it computed itself.
"""
import ast
import resource
import sys

from . import channel
from .limits import StudentCodeError, run_limited
from .observe import observe

LIMITS = {'memory': resource.RLIMIT_AS, 'cpu': resource.RLIMIT_CPU,
          'processes': resource.RLIMIT_NPROC, 'file_size': resource.RLIMIT_FSIZE,
          'open_files': resource.RLIMIT_NOFILE}


def set_limits(limits):
    """Set each resource limit in `limits` (name in `LIMITS` -> number), hard
    and soft, and forbid core dumps."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for name, value in limits.items():
        resource.setrlimit(LIMITS[name], (int(value), int(value)))


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


def observe_check(check, kind, namespace, timeout):
    """The message for one check: the observation of the student's block, or why not."""
    student = namespace.get(check['target'])
    if not callable(student):
        return {'status': 'missing'}
    args = ast.literal_eval(check['args'])
    reference = {'weights': check['weights'], 'layout': check['layout']}
    try:
        seen = run_limited(observe, student, args, check['input_shape'], kind, reference,
                           timeout=timeout, what=check['call'])
    except StudentCodeError as err:
        return {'status': 'timeout' if not err.finished and 'did not finish' in str(err)
                else 'error', 'text': str(err)}
    return {'status': 'observed',
            'observation': {key: seen[key] for key in ('param_problem', 'returned', 'steps',
                                                       'outputs')}}


def _attempts():
    package = sys.modules.get('d2lnets')
    return list(dict.fromkeys(getattr(package, 'ATTEMPTS', [])))[:20]


def main(argv=None):
    request_path, results_fd = argv or sys.argv[1:]
    results_fd = int(results_fd)
    with open(request_path, 'rb') as f:
        (request,), _ = channel.read_messages(f.read())
    set_limits(request['limits'])
    namespace = {'__name__': '__main__'}
    notes = run_cells(request['cells'], namespace, request['timeout'])
    channel.send(results_fd, {'notes': notes, 'attempts': _attempts()})
    for number, check in enumerate(request['checks']):
        message = observe_check(check, request['kind'], namespace, request['timeout'])
        channel.send(results_fd, dict(message, check=number))


if __name__ == '__main__':
    main()
