"""Run student code with a time limit, turning whatever it does wrong into one line.

This is the one mechanism behind everything in the classroom kit that runs a
student's code -- the interactive checker, each cell of a graded submission
and each graded check: the code runs in a forked child process; the parent
waits at most `timeout` seconds, then kills it. Anything the code raises (or
an exit, or a crash of the process) comes back as a `StudentCodeError` whose
message is one line naming the function or cell, never a traceback. The
child's prints are discarded.

Forking needs Linux or macOS (the kit's platforms, as MXNet 1.9's).
"""
import ctypes
import io
import multiprocessing
import sys

import mxnet as mx

from .._messages import first_line

DEFAULT_TIMEOUT = 10.0  # seconds; the kit's checks run in well under one


class StudentCodeError(Exception):
    """Student code raised, crashed or ran out of time; the message is one line.
    `finished` says whether the code ended by itself (raised or exited) rather
    than being stopped or crashing the process."""

    def __init__(self, message, finished=False):
        super().__init__(message)
        self.finished = finished


def run_limited(func, *args, timeout=DEFAULT_TIMEOUT, what='your code'):
    """`func(*args)` in a forked child, killed after `timeout` seconds.

    Returns what `func` returns (it must be picklable); raises
    `StudentCodeError` naming `what` when it raises, exits, crashes or times out.
    """
    mx.nd.waitall()  # a fork while MXNet's engine is busy leaves the child waiting forever
    context = multiprocessing.get_context('fork')
    receiver, sender = context.Pipe(duplex=False)
    # Not a daemon: a daemonic process may not start children, and student
    # code (a notebook's own check cell) may run checks that do.
    child = context.Process(target=_run_child, args=(sender, func, args, what))
    child.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise StudentCodeError(f'{what} did not finish within {timeout:g} s: '
                                   f'is there a loop that never ends?')
        try:
            status, value = receiver.recv()
        except EOFError:
            child.join(1)
            raise StudentCodeError(f'{what} crashed the Python process '
                                   f'(exit code {child.exitcode})') from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if status == 'error':
        raise StudentCodeError(value, finished=True)
    return value


def _run_child(sender, func, args, what):
    # GNU OpenMP's thread pool does not survive a fork: a child that starts a
    # parallel region with several threads waits forever, so it runs on one.
    mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(1))
    sys.stdout = sys.stderr = io.StringIO()
    try:
        result = ('ok', func(*args))
    except BaseException as err:  # noqa: B036  (student code may raise anything, even exit)
        result = ('error', describe_exception(err, what))
    sender.send(result)


def describe_exception(err, what):
    """'<what> raised <Type>: <first line> (cell 3, line 4)': one line for a student.

    The place is the last frame of code compiled under a '<student:LABEL>'
    file name, as the grader compiles each notebook cell ('cell 3').
    """
    if isinstance(err, SystemExit):
        return f'{what} called exit() (code {err.code})'
    place = ''
    frame = err.__traceback__
    while frame is not None:
        name = frame.tb_frame.f_code.co_filename
        if name.startswith('<student:'):
            place = f' ({name[9:-1]}, line {frame.tb_lineno})'
        frame = frame.tb_next
    text = first_line(err) if str(err).strip() else ''
    return f'{what} raised {type(err).__name__}{": " + text if text else ""}{place}'
