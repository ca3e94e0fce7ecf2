"""CPU contexts whose operators run on a chosen number of OpenMP threads,
for a training that changes its thread count in mid-run (`load_follower`).

MXNet reads OMP_NUM_THREADS once, and a running process cannot change how
many threads an operator uses from Python: MXNet's threaded engine runs
each CPU context's operators on a worker thread of its own (one a context
unless MXNET_CPU_WORKER_NTHREADS says otherwise), and oneDNN fixes a
kernel's thread count when that worker first builds the kernel, caching it
there. `MXSetNumOMPThreads` sets only the calling thread's count. So each
other count gets a context of its own, cpu(PLACE_BASE + count): before it
runs anything, `MXSetNumOMPThreads(count)` is pushed to its worker through
the engine (`MXEnginePushSyncND`), and every kernel that worker builds
afterwards uses that count. Measured: a VGG step on such a context used
1.00 cores of CPU time per second of wall time, against 1.99 on cpu(0).

MXNet stops and restarts its engine threads when the process forks (a
DataLoader's workers, the grader's children), and a restarted worker starts
over at OMP_NUM_THREADS; so every count is pushed again right after a fork,
in the parent, before the worker can build a kernel.
"""
import ctypes
import os

import mxnet as mx
from mxnet import nd
from mxnet.base import _LIB, check_call

PLACE_BASE = 1000  # cpu(PLACE_BASE + n) runs on n threads; far from any context a user names
_CPU = 1  # MXNet's device type for the CPU (Context::kCPU)
_SYNC_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_placed = {}  # dev_id -> the thread count pushed to its worker, in this process


class _Context(ctypes.Structure):
    """MXNet's C++ Context: a device type and a device id."""
    _fields_ = [('dev_type', ctypes.c_int), ('dev_id', ctypes.c_int)]


@_SYNC_FUNC
def _set_threads(run_context, threads):
    """Run by the engine on a context's worker: its OpenMP thread count."""
    _LIB.MXSetNumOMPThreads(ctypes.c_int(threads))


def place(threads):
    """The CPU context whose operators run on `threads` OpenMP threads."""
    if threads < 1:
        raise ValueError(f'a place runs on at least 1 thread, not {threads}')
    ctx = mx.cpu(PLACE_BASE + threads)
    if _placed.get(ctx.device_id) != threads:
        _push_threads(ctx, threads)
        _placed[ctx.device_id] = threads
    return ctx


def _push_threads(ctx, threads):
    """Set the OpenMP thread count of `ctx`'s worker thread, and wait until it is set."""
    marker = nd.zeros((1,), ctx=ctx)  # the operation's variable, so that it can be waited for
    handles = (ctypes.c_void_p * 1)(marker.handle)
    check_call(_LIB.MXEnginePushSyncND(
        _set_threads, ctypes.c_void_p(threads), None,
        ctypes.byref(_Context(_CPU, ctx.device_id)), None, 0, handles, 1, None, 0, None))
    marker.wait_to_read()


def _after_fork_in_parent():
    """Push every count again: the fork restarted the workers at OMP_NUM_THREADS."""
    for dev_id, threads in _placed.items():
        _push_threads(mx.cpu(dev_id), threads)


def _after_fork_in_child():
    """A child's workers start afresh: nothing is set there until it asks."""
    _placed.clear()


if hasattr(os, 'register_at_fork'):  # not on Windows, which does not fork
    os.register_at_fork(after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
