"""Save a run after every epoch and take it up again where it stopped.

A checkpoint directory holds the parameters (`model.params`), the optimizer's
state (`trainer.states`) and the history so far (`history.json`). Each is
written to a temporary file and renamed, and the history goes last, so the
epoch it names always has its parameters on disk: an interrupt at any moment
leaves the last complete epoch to resume from.

In a distributed job every worker reads the checkpoint to resume, and only
the first (rank 0) writes it. The optimizer state then lives on the servers
and cannot be saved, so only parameters and history are kept (the chapters'
SGD without momentum has no state to lose).
"""
import os
import tempfile

from .._messages import first_line
from .history import History

PARAMS = 'model.params'
STATES = 'trainer.states'
HISTORY = 'history.json'


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or does not fit the run."""


class Checkpoint:
    """The checkpoint directory of one run.

    `write=False` makes `save` do nothing (a worker other than rank 0);
    `trainer_states=False` leaves the optimizer state out (a dist kvstore).
    """

    def __init__(self, directory, write=True, trainer_states=True):
        self.directory = directory
        self.write = write
        self.trainer_states = trainer_states

    def path(self, name):
        return os.path.join(self.directory, name)

    def exists(self):
        return os.path.isfile(self.path(HISTORY))

    def save(self, net, trainer, history):
        if not self.write:
            return
        os.makedirs(self.directory, exist_ok=True)
        self._atomic(lambda tmp: net.save_parameters(tmp), PARAMS)
        if self.trainer_states:
            self._atomic(lambda tmp: trainer.save_states(tmp), STATES)
        history.save(self.path(HISTORY))

    def restore(self, net, trainer, ctx):
        """Load parameters and optimizer state into `net` and `trainer`; return the history."""
        if not self.exists():
            raise CheckpointError(f'no checkpoint to resume in {self.directory}')
        try:
            net.load_parameters(self.path(PARAMS), ctx=ctx)
            if self.trainer_states:
                trainer.load_states(self.path(STATES))
        except (AssertionError, ValueError, OSError) as err:
            raise CheckpointError(f'the checkpoint in {self.directory} does not fit this '
                                  f'network ({first_line(err)}); start afresh without --resume '
                                  f'or pick another checkpoint directory') from None
        return History.load(self.path(HISTORY))

    def _atomic(self, write, name):
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f'.{name}.')
        os.close(fd)
        try:
            write(tmp)
            os.replace(tmp, self.path(name))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
