"""Set up MXNet's OpenMP threads before MXNet loads.

MXNet 1.9.1's CPU wheel runs oneDNN and OpenBLAS on a single OpenMP thread
unless OMP_NUM_THREADS says otherwise (measured on a 2-core machine: 1.5x
faster training and 2x faster matrix products with both cores), and by
default its threads go to sleep between the many small parallel regions of a
training step; OMP_WAIT_POLICY=ACTIVE keeps them spinning instead (measured
on a 2-core Xeon: LeNet 1.2-2.3x, BN-LeNet 2.4x, AlexNet 1.23x faster
training; see docs/results.md). But ACTIVE alone lets libgomp spin for
minutes, and a thread team whose master has gone quiet (one of MXNet's
engine threads) then holds a core the working team needs: training steps
ran at half speed until the main thread happened to run a large array
conversion. GOMP_SPINCOUNT=300000 (libgomp's own default spin, about
3 ms) keeps threads spinning between operators and lets an idle team sleep
(measured on a 2-core EPYC: LeNet's step 2.2x, BN-LeNet's 2.5x, AlexNet's
chapter loop at 224x224 1.47x; see docs/results.md, "Threads"). Processes
that horovodrun (or mpirun) starts side by side on one machine share its
cores. The thread pools read these variables when MXNet is loaded, so this
must run before the first `import mxnet`; values the user set win. When
MXNet (or d2l, which imports it) came first and left OMP_NUM_THREADS unset
on a machine with more cores, a warning says once how to fix it: its thread
pools cannot be resized from Python afterwards.
"""
import os
import sys
import warnings

SET_BY_D2LNETS = False  # True once tune_threads() has set OMP_NUM_THREADS itself
SETTINGS = {'OMP_WAIT_POLICY': 'ACTIVE', 'GOMP_SPINCOUNT': '300000'}
THREAD_VARIABLES = ('OMP_NUM_THREADS', *SETTINGS)  # what tune_threads() may set
_warned = False  # warn_if_single_threaded() has warned


def tune_threads():
    """Set OMP_NUM_THREADS to the usable core count (divided among the
    processes horovodrun or mpirun started on this machine) and
    OMP_WAIT_POLICY and GOMP_SPINCOUNT as SETTINGS says, each only if unset,
    and only if MXNet is not loaded yet."""
    global SET_BY_D2LNETS
    if 'mxnet' in sys.modules:
        warn_if_single_threaded()
        return
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    if 'OMP_NUM_THREADS' not in os.environ:
        os.environ['OMP_NUM_THREADS'] = str(max(1, usable_cores() // processes_here()))
        SET_BY_D2LNETS = True


def thread_settings(env):
    """The variables tune_threads() may set, as `env` has them: lower-case
    names, None where unset (for the benchmark's records)."""
    return {name.lower(): env.get(name) for name in THREAD_VARIABLES}


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


def usable_cores():
    """How many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def processes_here():
    """How many processes of a Horovod or MPI job run on this machine (1 if none)."""
    for name in ('HOROVOD_LOCAL_SIZE', 'OMPI_COMM_WORLD_LOCAL_SIZE'):
        if os.environ.get(name, '').isdigit():
            return max(1, int(os.environ[name]))
    return 1
