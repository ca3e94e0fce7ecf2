"""Threads that follow the machine's load during a training: each step runs
on as many OpenMP threads as other programs leave free, measured again
every few seconds.

At start-up d2lnets chooses the threads from the load it sees then
(`d2lnets._threads`): a training that starts on a quiet machine takes
both cores with spinning threads, and keeps them when other trainings
start beside it a few seconds later, so that three trainings started apart
ran at 0.83-0.96x the speed of the same three one after another
(docs/results.md, "Trainings started apart"). MXNet reads OMP_NUM_THREADS
once, and oneDNN fixes a convolution's thread count when it first builds
it, caching it per calling thread. But with the NaiveEngine that d2lnets
runs on the CPU, operators run on the Python thread that calls them: a step
run on another thread, whose OpenMP thread count is set first, builds and
caches its own kernels for that count. So `LoadFollower.run` runs each
step on the calling thread while the start-up count still fits the load,
and on a thread of its own for each other count once the load has called
for that count at CHECKS_TO_SWITCH checks in a row (a brief spike changes
nothing); it says so in one line each time.

It follows only the count d2lnets chose itself, on the CPU, and only where
the load can be measured (Linux): set OMP_NUM_THREADS to choose yourself.
Another count splits oneDNN's sums differently, so the last bits of the
weights depend on the load, as they already did through the start-up
choice: set OMP_NUM_THREADS too for runs that repeat bit for bit.
"""
import concurrent.futures
import ctypes
import glob
import os
import time

from .. import _threads

CHECK_SECONDS = 1.0  # how often the load is measured during a training
CHECKS_TO_SWITCH = 2  # checks in a row that must call for another count before it is taken
_pools = {}  # thread count -> the executor whose one thread runs steps on that many


def can_follow(ctxs):
    """Whether the thread count may follow the load for a training on `ctxs`:
    d2lnets chose the count (the user did not) from a load it could measure,
    and the NaiveEngine, and every context is a CPU."""
    choice = _threads.CHOICE
    return (choice is not None and choice.follows_load()
            and all(ctx.device_type == 'cpu' for ctx in ctxs))


class LoadFollower:
    """Runs a training's steps on the thread count the load calls for.

    Parameters
    ----------
    enabled : bool
        False: every step runs on the calling thread, as it would without a
        follower (see `can_follow`).
    log : callable
        Called with the line that announces a change of thread count.
    measure : callable, optional
        Called with no argument, returns the cores' worth of CPU other
        programs used since its last call (default: `OthersLoad()`).
    clock : callable
        Seconds, for the time between measurements (`time.monotonic`).
    """

    def __init__(self, enabled, log=print, measure=None, clock=time.monotonic):
        self.enabled = enabled
        self.log = log
        self.home = _threads.CHOICE.threads if enabled else None  # the calling thread's count
        self.threads = self.home
        self.usable = _threads.usable_cores()
        self._measure = measure if measure is not None else (OthersLoad() if enabled else None)
        self._clock = clock
        self._next_check = clock() + CHECK_SECONDS
        self._wanted, self._agreeing = self.home, 0

    def run(self, step, *args):
        """`step(*args)` on the thread that runs this follower's thread count;
        its result, or its exception. Interrupted (Ctrl-C) while a step runs on
        another thread, it waits for the step to end before raising, so the
        network is never left half-updated."""
        if self.enabled and self._clock() >= self._next_check:
            self._check()
        if not self.enabled or self.threads == self.home:
            return step(*args)
        future = _pool(self.threads).submit(step, *args)
        try:
            return future.result()
        except BaseException:
            concurrent.futures.wait([future])
            raise

    def _check(self):
        self._next_check = self._clock() + CHECK_SECONDS
        others = self._measure()
        if others is None:
            return
        wanted, _ = _threads.choose(self.usable, others)
        self._agreeing = self._agreeing + 1 if wanted == self._wanted else 1
        self._wanted = wanted
        if wanted != self.threads and self._agreeing >= CHECKS_TO_SWITCH:
            self.threads = wanted
            self.log(announcement(wanted, others, self.usable))


def announcement(threads, others, usable):
    """The line that says the thread count changed, why, and how to choose."""
    unit = 'thread' if threads == 1 else 'threads'
    if threads < usable:
        why = f'other programs now use {others:.1f} of the {usable} cores'
    else:
        why = f'the other programs have stopped (they use {others:.1f} cores)'
    return (f'threads: {why}: training on {threads} {unit} from here (set OMP_NUM_THREADS '
            f'before starting Python to keep one count)')


def _pool(threads):
    """The executor whose one thread runs steps on `threads` OpenMP threads."""
    if threads not in _pools:
        _pools[threads] = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f'd2lnets-{threads}-threads',
            initializer=_set_openmp_threads, initargs=(threads,))
    return _pools[threads]


def _set_openmp_threads(threads):
    """Set the calling thread's OpenMP thread count (MXNet's C API)."""
    from mxnet.base import _LIB, check_call
    check_call(_LIB.MXSetNumOMPThreads(ctypes.c_int(threads)))


class OthersLoad:
    """Cores' worth of CPU that other programs used on this process's cores
    since the last call (the first call: since the object was made): the
    machine's busy time (/proc/stat) less this process's own and its
    children's (data loader workers are this training's work, not load).
    None when it cannot be read."""

    def __init__(self):
        self.cpus = _threads.usable_cpus()
        self._last = self._sample()

    def __call__(self):
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        elapsed, busy, own = (b - a for a, b in zip(last, now, strict=True))
        return max(0.0, busy - own) / elapsed

    def _sample(self):
        """(monotonic s, busy CPU s of the cores, CPU s of this process and its children)."""
        try:
            ticks = os.sysconf('SC_CLK_TCK')
            return (time.monotonic(), _threads._busy_ticks(self.cpus) / ticks,
                    time.process_time() + children_cpu_seconds(ticks))
        except (OSError, ValueError):
            return None


def children_cpu_seconds(ticks, proc='/proc'):
    """CPU seconds (user and system) of this process's running children, from
    /proc/self/task/*/children and each child's stat; 0 where Linux does not
    list children."""
    total = 0
    for listing in glob.glob(f'{proc}/self/task/*/children'):
        try:
            with open(listing) as f:
                pids = f.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                with open(f'{proc}/{pid}/stat') as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except (OSError, IndexError):
                continue  # ended meanwhile
            total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return total / ticks
