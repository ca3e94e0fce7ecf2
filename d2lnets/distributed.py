"""Data-parallel training across processes on MXNet's parameter server
(D2L section 13.7, "Parameter Servers"; MXNet's `kvstore='dist_sync'`).

Each worker trains on its own shard of the data and pushes its gradients to
the servers, which hold the parameters and run the optimizer (MXNet's
default, `update_on_kvstore=True`). With `dist_sync` a server waits for every
worker's gradient, applies their sum once, and every worker pulls the same
parameters; with `dist_async` it applies each worker's gradient as it comes.
The optimizer state therefore lives on the servers and is not checkpointed.
(Applying the sum on the workers instead, `update_on_kvstore=False`, gave
corrupted first steps in 2 of 6 runs here with MXNet 1.9.1.)

A worker is started by `python -m d2lnets.launch`, which sets the DMLC_*
variables. A worker that dies while the others wait in ps-lite leaves them
waiting forever, and a worker whose Python code raised hangs at exit itself
(ps-lite's shutdown waits for the others), so workers here leave at once,
with `os._exit`, when they fail.
"""
import os
import sys

import mxnet as mx
import numpy as np

KVSTORES = ('device', 'local', 'dist_sync', 'dist_async')


class DistributedError(RuntimeError):
    """A distributed run started in a way that cannot work."""


def is_distributed(kvstore):
    return kvstore is not None and kvstore.startswith('dist')


def launched_role():
    """The DMLC_ROLE a launcher gave this process, or None."""
    return os.environ.get('DMLC_ROLE')


def check_kvstore(kvstore):
    """Refuse a kvstore that does not fit how this process was started."""
    if kvstore is not None and kvstore not in KVSTORES:
        raise DistributedError(f'--kvstore {kvstore}: use one of {", ".join(KVSTORES)}')
    if is_distributed(kvstore) and launched_role() is None:
        raise DistributedError(f'--kvstore {kvstore} needs a scheduler and servers: run it '
                               f'under python -m d2lnets.launch -n 2 -- <this command>')
    if launched_role() == 'worker' and not is_distributed(kvstore):
        raise DistributedError('started by a launcher (DMLC_ROLE=worker) but --kvstore is not '
                               'dist_sync or dist_async: add --kvstore dist_sync')


def num_launched_workers():
    """DMLC_NUM_WORKER under a launcher, else 1."""
    return int(os.environ.get('DMLC_NUM_WORKER', '1')) if launched_role() else 1


def create_kvstore(kvstore):
    """`mx.kv.create(kvstore)`; for a distributed one, join the job and make any
    uncaught exception end this worker at once (see `fail_fast`)."""
    check_kvstore(kvstore)
    store = mx.kv.create(kvstore)
    if is_distributed(kvstore):
        fail_fast()
    return store


def fail_fast():
    """Print an uncaught exception as usual, then end the process without
    Python's shutdown, which would wait in ps-lite for the other workers."""
    previous = sys.excepthook

    def hook(*exc_info):
        previous(*exc_info)
        exit_now(1)

    sys.excepthook = hook


def exit_now(code):
    """Flush the output and end the process with `code`; under a launcher
    with `os._exit`, so that ps-lite's shutdown cannot block it."""
    sys.stdout.flush()
    sys.stderr.flush()
    if launched_role() is not None:
        os._exit(code)
    sys.exit(code)


def shard_indices(num_examples, num_parts, part_index):
    """Indices of part `part_index` of `num_parts` equal, interleaved parts.

    Every part has `num_examples // num_parts` examples (the few left over are
    dropped), so every worker runs the same number of batches: in `dist_sync`
    a worker with one batch more would wait for the others forever.
    """
    if not 0 <= part_index < num_parts:
        raise ValueError(f'part {part_index} of {num_parts} does not exist')
    per_part = num_examples // num_parts
    if per_part == 0:
        raise ValueError(f'{num_examples} examples cannot be shared by {num_parts} workers')
    return np.arange(part_index, per_part * num_parts, num_parts)
