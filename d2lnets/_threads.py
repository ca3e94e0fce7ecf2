"""Give MXNet every core this process may use.

MXNet 1.9.1's CPU wheel runs oneDNN and OpenBLAS on a single OpenMP thread
unless OMP_NUM_THREADS says otherwise (measured on a 2-core machine: 1.5x
faster training and 2x faster matrix products with both cores; see
docs/results.md). The thread pools read the variable when MXNet is loaded, so
this must run before the first `import mxnet`; a value the user set wins.
"""
import os
import sys

SET_BY_D2LNETS = False  # True once use_all_cores() has set OMP_NUM_THREADS itself


def use_all_cores():
    """Set OMP_NUM_THREADS to the usable core count if unset and MXNet is not loaded yet."""
    global SET_BY_D2LNETS
    if 'OMP_NUM_THREADS' in os.environ or 'mxnet' in sys.modules:
        return
    cores = usable_cores()
    os.environ['OMP_NUM_THREADS'] = str(cores)
    SET_BY_D2LNETS = True


def usable_cores():
    """How many cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
