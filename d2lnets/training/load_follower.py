"""A training's thread count that follows the machine's load: the steps run
on as many OpenMP threads as other programs leave free, measured again every
second.

At start-up d2lnets chooses the threads from the load it sees then
(`d2lnets._threads`): a training that starts on a quiet machine takes both
cores with spinning threads, and kept them when other trainings started
beside it a few seconds later, so that three trainings started 4 s apart
ran at 0.83-1.04x the speed of the same three one after another
(docs/results.md, "Session 16"). Now `train_ch5` measures other programs'
CPU every CHECK_SECONDS, and once CHECKS_TO_SWITCH checks in a row call for
another count (a brief spike changes nothing) it moves the network's
parameters and the next batches to the CPU context whose worker runs that
count (`thread_places`), saying so in one line; the start-up count runs on
the caller's own context. The optimizer's state (momentum) stays where it
is: on the CPU every worker reads it. The move is a copy, bit for bit, and the
network's cached graph is dropped with it, so that only one context holds
its memory. At the end of every epoch, and when training stops for any
reason, the network goes back to the caller's context, so that checkpoints,
`on_epoch` and the caller find it where they put it.

It follows only a count d2lnets chose itself from a load it could measure
(Linux), for a hybridized network on one CPU context, with MXNet's default
engine and one worker a context, outside parameter-server jobs: set
OMP_NUM_THREADS to choose yourself.
Another count splits oneDNN's sums differently, so the last bits of the
weights depend on the load, as they already did through the start-up
choice: set OMP_NUM_THREADS too for runs that repeat bit for bit.
"""
import glob
import os
import time

from .. import _threads
from . import thread_places

CHECK_SECONDS = 1.0  # how often the load is measured during a training
CHECKS_TO_SWITCH = 2  # checks in a row that must call for another count before it is taken


def can_follow(ctxs, hybridized):
    """Whether the thread count may follow the load for a training on `ctxs`:
    d2lnets chose the count from a load it measured (the user did not),
    MXNet runs its default engine with one worker a context (what lets a
    context have a count of its own), the process is not one of a
    parameter-server job (DMLC_ROLE), and train_ch5 hybridizes the network
    (`hybridized`: moving it drops the cached graph, which train_ch5 then
    builds again) on one CPU context."""
    choice = _threads.CHOICE
    return (choice is not None and choice.follows_load() and hybridized
            and len(ctxs) == 1 and ctxs[0].device_type == 'cpu'
            and os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice')
            == 'ThreadedEnginePerDevice'
            and os.environ.get('MXNET_CPU_WORKER_NTHREADS', '1') == '1'
            and 'DMLC_ROLE' not in os.environ)


class LoadFollower:
    """Where a training's next batch runs: on the caller's context while the
    start-up thread count fits the load, else on the context of the count
    the load calls for. Use it as a context manager: on leaving, the network
    is back on the caller's context.

    Parameters
    ----------
    net
        The network, hybridized with static memory by train_ch5.
    ctxs : list of Context
        The caller's contexts, where the network starts and ends.
    enabled : bool
        False: every batch runs on `ctxs` (see `can_follow`).
    log : callable
        Called with the line that announces a change of thread count.
    measure : callable, optional
        Called with no argument, returns the cores' worth of CPU other
        programs used since its last call, or None (default: `OthersLoad()`).
    clock : callable
        Seconds, for the time between measurements (`time.monotonic`).
    """

    def __init__(self, net, ctxs, enabled, log=print, measure=None, clock=time.monotonic):
        self.net, self.home = net, list(ctxs)
        self.enabled = enabled
        self.log = log
        choice = _threads.CHOICE if enabled else None
        self.home_threads = choice.threads if choice else None
        self.threads = self.home_threads  # the count the load calls for now
        self.usable = choice.usable if choice else None
        self._measure = measure if measure is not None else (OthersLoad() if enabled else None)
        self._clock = clock
        self._next_check = clock() + CHECK_SECONDS
        self._wanted, self._agreeing = self.home_threads, 0
        self._where = self.home  # where the network is now

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.go_home()
        return False

    def contexts(self):
        """The contexts for the next batch, the network moved there first."""
        if self.enabled and self._clock() >= self._next_check:
            self._check()
        if self.threads == self.home_threads:
            target = self.home
        else:
            target = [thread_places.place(self.threads)]
        self._move_to(target)
        return target

    def go_home(self):
        """Move the network back to the caller's context, if it is elsewhere."""
        self._move_to(self.home)

    def _move_to(self, ctxs):
        if ctxs == self._where:
            return
        self.net.collect_params().reset_ctx(ctxs)  # the optimizer's state stays: any CPU reads it
        self.net.hybridize(static_alloc=True, static_shape=True)  # drops the cached graph
        self._where = ctxs

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
    for listing in sorted(glob.glob(f'{proc}/self/task/*/children')):
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
