"""Choose MXNet's OpenMP threads before MXNet loads, from what the machine
shows: how many cores this process may use, and how busy they are.

MXNet 1.9.1's CPU wheel runs oneDNN and OpenBLAS on a single OpenMP thread
unless OMP_NUM_THREADS says otherwise; on a quiet 2-core machine both cores
train 1.5x faster. Between the many small parallel regions of a training
step its threads would go to sleep; OMP_WAIT_POLICY=ACTIVE keeps them
spinning, and GOMP_SPINCOUNT=300000 (libgomp's own spin, about 3 ms) lets an
idle team sleep after that (docs/results.md, "Threads").

On a busy machine the same settings are the worst there are: an OpenMP team
waits at every region's end for its slowest thread, and a thread that the
scheduler has put off its core holds up the others for a time slice. Beside
three other trainings on 2 cores, VGG's quick run trained 7-14x slower on
two spinning threads than on one (docs/results.md, "Busy machines"). So at
start-up d2lnets measures, for a fraction of a second, how much CPU other
programs use on the cores it may run on (/proc/stat, Linux; it keeps one
core busy meanwhile, so that trainings started together see each other): if they use
less than half a core, it takes every usable core with spinning threads;
otherwise it takes the cores they leave wholly free (at least one) and lets
waiting threads sleep (OMP_WAIT_POLICY=PASSIVE). MXNet reads these
variables once, when it loads; `train_ch5` then changes the thread count
when the load changes (`d2lnets.training.load_follower`).

Processes that horovodrun (or mpirun) starts side by side on one machine
share its cores and are not measured as load. Values the user set win, one
by one. When MXNet (or d2l, which imports it) came first and left
OMP_NUM_THREADS unset on a machine with more cores, a warning says once how
to fix it: its thread pools cannot be resized from Python afterwards.
"""
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass

SET_BY_D2LNETS = False  # True once tune_threads() has set OMP_NUM_THREADS itself
QUIET_SETTINGS = {'OMP_WAIT_POLICY': 'ACTIVE', 'GOMP_SPINCOUNT': '300000'}
BUSY_SETTINGS = {'OMP_WAIT_POLICY': 'PASSIVE'}
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')
BUSY_CORES = 0.5  # other programs using this many cores or more make the machine busy
SAMPLE_SECONDS = 0.2  # how long the load is measured at start-up
CHOICE = None  # the ThreadChoice tune_threads() made, once it has run
_warned = False  # warn_if_single_threaded() has warned


@dataclass(frozen=True)
class ThreadChoice:
    """What tune_threads() found and set.

    Attributes
    ----------
    threads : int
        OMP_NUM_THREADS as MXNet will read it.
    usable : int
        Cores this process may run on.
    others : float or None
        Cores' worth of CPU that other programs used at start-up (None: not
        measured, because the user chose or the machine cannot tell).
    env : dict
        The thread variables as MXNet will read them (None where unset).
    user_set : tuple
        The variables the user had set before d2lnets looked.
    """
    threads: int
    usable: int
    others: float | None
    env: dict
    user_set: tuple

    def describe(self):
        """One line for the start of a run: what was chosen, why, how to override."""
        settings = ', '.join(f'{k}={v}' for k, v in self.env.items() if v is not None)
        if 'OMP_NUM_THREADS' in self.user_set:
            why = f'OMP_NUM_THREADS={self.threads} was set before d2lnets started'
        elif self.others is None:
            why = f'all {self.usable} usable cores (load not measured)'
        elif self.others < BUSY_CORES:
            why = (f'all {self.usable} usable cores, spinning: the machine was quiet '
                   f'(other programs used {self.others:.1f} cores)')
        else:
            why = (f'{self.threads} of {self.usable} cores, sleeping when idle: other programs '
                   f'used {self.others:.1f} cores when this run started')
        if self.follows_load():
            why += '; the count follows the load while training'
        return (f'threads: {settings} ({why}); to choose yourself, set OMP_NUM_THREADS and '
                f'OMP_WAIT_POLICY before starting Python')

    def follows_load(self):
        """Whether `train_ch5` may change the thread count with the load
        (`d2lnets.training.load_follower`): d2lnets chose it from a load it
        could measure, and there is more than one core to choose from."""
        return ('OMP_NUM_THREADS' not in self.user_set and self.others is not None
                and self.usable > 1)


def choose(usable, others, processes=1):
    """(threads, settings) for `usable` cores of which other programs use
    `others` (None: unknown, taken as quiet), shared by `processes`
    processes of one job on this machine."""
    if others is None or others < BUSY_CORES:
        return max(1, usable // processes), dict(QUIET_SETTINGS)
    free_cores = math.floor(max(0.0, usable - others))
    return max(1, min(usable, free_cores) // processes), dict(BUSY_SETTINGS)


def tune_threads():
    """Choose OMP_NUM_THREADS, OMP_WAIT_POLICY and GOMP_SPINCOUNT (module
    docstring), each only if unset, and only if MXNet is not loaded yet;
    keep the choice in CHOICE."""
    global SET_BY_D2LNETS, CHOICE
    if 'mxnet' in sys.modules:
        warn_if_single_threaded()
        return
    user_set = tuple(name for name in THREAD_VARIABLES if name in os.environ)
    usable, processes = usable_cores(), processes_here()
    others = None
    if len(user_set) < len(THREAD_VARIABLES) and processes == 1:
        others = others_load(usable_cpus())
    threads, settings = choose(usable, others, processes)
    for name, value in settings.items():
        os.environ.setdefault(name, value)
    if 'OMP_NUM_THREADS' not in os.environ:
        os.environ['OMP_NUM_THREADS'] = str(threads)
        SET_BY_D2LNETS = True
    CHOICE = ThreadChoice(threads=_int_or(os.environ['OMP_NUM_THREADS'], threads),
                          usable=usable, others=others, env=thread_settings_raw(os.environ),
                          user_set=user_set)


def describe_choice():
    """CHOICE's one line, or one saying that MXNet was loaded before d2lnets."""
    if CHOICE is None:
        return (f'threads: OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")} '
                f'(MXNet was loaded before d2lnets, which could not choose)')
    return CHOICE.describe()


def _int_or(text, default):
    return int(text) if text.isdigit() else default


def thread_settings_raw(env):
    """The thread variables as `env` has them (None where unset)."""
    return {name: env.get(name) for name in THREAD_VARIABLES}


def thread_settings(env):
    """The variables tune_threads() may set, as `env` has them: lower-case
    names, None where unset (for the benchmark's records)."""
    return {name.lower(): value for name, value in thread_settings_raw(env).items()}


def others_load(cpus, seconds=SAMPLE_SECONDS):
    """Cores' worth of CPU time that other processes used on `cpus` over
    `seconds`, from /proc/stat, this process's own time left out (at most
    one a CPU: the kernel counts in ticks of 10 ms); None where /proc/stat
    cannot be read (not Linux).

    This process keeps one core busy while it measures rather than sleeping:
    trainings started together measure together, and each must see the
    others as load (sleeping, they would all see a quiet machine and all
    take every core)."""
    try:
        start, own_start, t0 = _busy_ticks(cpus), time.process_time(), time.monotonic()
        while time.monotonic() - t0 < seconds:
            pass
        busy, own, elapsed = (_busy_ticks(cpus) - start, time.process_time() - own_start,
                              time.monotonic() - t0)
    except (OSError, ValueError):
        return None
    ticks_per_second = os.sysconf('SC_CLK_TCK')
    return min(float(len(cpus)), max(0.0, busy / ticks_per_second - own) / elapsed)


def _busy_ticks(cpus, stat='/proc/stat'):
    """Clock ticks the `cpus` spent not idle (user, nice, system, irq, softirq,
    steal), summed, from /proc/stat. Niced programs count as load too: beside
    two `nice -n 19` spinners, two threads at nice 0 trained at a tenth of
    one thread's speed (docs/results.md, "Niced neighbours")."""
    total = 0
    with open(stat) as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith('cpu') and name[3:].isdigit() and int(name[3:]) in cpus:
                values = [int(v) for v in fields[:8]]
                total += sum(values) - values[3] - values[4]  # less idle and iowait
    return total


def warn_if_single_threaded():
    """Warn (a RuntimeWarning, once) that MXNet, loaded before d2lnets without
    OMP_NUM_THREADS, runs on one thread where more cores are usable."""
    global _warned
    threads = max(1, usable_cores() // processes_here())
    if _warned or 'OMP_NUM_THREADS' in os.environ or threads == 1:
        return
    _warned = True
    warnings.warn(f'mxnet (or d2l) was imported before d2lnets, so MXNet runs on 1 thread '
                  f'although {threads} cores are usable: import d2lnets first (restart the '
                  f'kernel), or set OMP_NUM_THREADS={threads} before starting Python',
                  RuntimeWarning, stacklevel=4)


def usable_cpus():
    """The CPU numbers this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


def usable_cores():
    """How many cores this process may run on."""
    return len(usable_cpus())


def processes_here():
    """How many processes of a Horovod or MPI job run on this machine (1 if none)."""
    for name in ('HOROVOD_LOCAL_SIZE', 'OMPI_COMM_WORLD_LOCAL_SIZE'):
        if os.environ.get(name, '').isdigit():
            return max(1, int(os.environ[name]))
    return 1
