"""Training: the book's loop `train_ch5`, checkpoints, the per-epoch history,
data-parallel and distributed runs and their launcher, and fine-tuning.

Imports `models` and `data`, never `viz`, `classroom` or the command line.
"""
from .checkpoint import Checkpoint, CheckpointError
from .history import History
from .loop import NetworkDied, TrainingDiverged, evaluate_accuracy, train_ch5

__all__ = ['train_ch5', 'evaluate_accuracy', 'TrainingDiverged', 'NetworkDied', 'History',
           'Checkpoint', 'CheckpointError']
