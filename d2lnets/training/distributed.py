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

Horovod (Sergeev and Del Balso, 2018) is the other way in, for users who
have it: workers started by `horovodrun` average their gradients with
allreduce, no servers involved.

A kvstore worker is started by `python -m d2lnets.training.launch`, which sets the DMLC_*
variables. A worker that dies while the others wait in ps-lite leaves them
waiting forever, and a worker whose Python code raised hangs at exit itself
(ps-lite's shutdown waits for the others), so workers here leave at once,
with `os._exit`, when they fail.
"""
import os
import sys
from dataclasses import dataclass

import mxnet as mx
from mxnet import gluon

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
                               f'under python -m d2lnets.training.launch -n 2 -- <this command>')
    if launched_role() == 'worker' and not is_distributed(kvstore):
        raise DistributedError('started by a launcher (DMLC_ROLE=worker) but --kvstore is not '
                               'dist_sync or dist_async: add --kvstore dist_sync')


def planned_workers(horovod=False):
    """How many workers the job this process was started in has, read from
    the environment before joining it: horovodrun's (or mpirun's) size with
    Horovod, else DMLC_NUM_WORKER under a launcher, else 1."""
    if horovod:
        return int(os.environ.get('HOROVOD_SIZE', os.environ.get('OMPI_COMM_WORLD_SIZE', '1')))
    return int(os.environ.get('DMLC_NUM_WORKER', '1')) if launched_role() else 1


def create_kvstore(kvstore):
    """`mx.kv.create(kvstore)`; for a distributed one, join the job and make any
    uncaught exception end this worker at once (see `fail_fast`)."""
    check_kvstore(kvstore)
    store = mx.kv.create(kvstore)
    if is_distributed(kvstore):
        fail_fast()
    return store


HOROVOD_INSTALL = ('HOROVOD_WITH_MXNET=1 pip install --no-build-isolation horovod==0.28.1 '
                   '(after pip install -U "setuptools<75"; it compiles for some minutes)')


@dataclass
class Membership:
    """This process's place in a data-parallel job.

    `trainer(params, optimizer, optimizer_params)` builds the job's Trainer;
    `step_batch(batch_size)` is what to pass to `trainer.step` when each
    worker takes batch_size / workers examples a step, so that a step
    averages batch_size gradients; `trainer_states` says whether the
    optimizer state is local and can be checkpointed.
    """
    rank: int
    workers: int
    kind: str
    trainer: object
    step_batch: object
    trainer_states: bool


def join(kvstore=None, horovod=False):
    """Join the job this process belongs to (a dist kvstore or Horovod), or
    stand alone (rank 0 of 1) with `kvstore` ('device' by default)."""
    if horovod:
        hvd = import_horovod()
        hvd.init()

        def horovod_trainer(params, optimizer, optimizer_params):
            hvd.broadcast_parameters(params, root_rank=0)
            return hvd.DistributedTrainer(params, optimizer, optimizer_params)

        # DistributedTrainer divides the summed gradients by the workers too.
        return Membership(hvd.rank(), hvd.size(), 'horovod', horovod_trainer,
                          lambda batch_size: batch_size // hvd.size(), True)
    store = create_kvstore(kvstore) if kvstore else 'device'

    def kvstore_trainer(params, optimizer, optimizer_params):
        return gluon.Trainer(params, optimizer, optimizer_params, kvstore=store)

    if is_distributed(kvstore):
        return Membership(store.rank, store.num_workers, kvstore, kvstore_trainer,
                          lambda batch_size: batch_size, False)
    return Membership(0, 1, kvstore or 'device', kvstore_trainer, lambda batch_size: batch_size,
                      True)


def import_horovod():
    try:
        import horovod.mxnet as hvd
    except ImportError as err:
        raise DistributedError(f'--horovod needs Horovod built for MXNet ({err}): '
                               f'{HOROVOD_INSTALL}') from None
    return hvd


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
