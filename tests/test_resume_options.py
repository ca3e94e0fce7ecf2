"""`run_experiment(..., resume=True)` takes every setting not given from the
checkpoint, as `--resume` does on the command line (docs/reliability.md, case 17)."""
import json

import pytest

from d2lnets.experiment import run_experiment
from d2lnets.training.checkpoint import CheckpointError


def test_a_resumed_experiment_keeps_the_checkpointed_settings(tmp_path):
    lines = []
    run_experiment('lenet', 'smoke', out=str(tmp_path), ctx='cpu', pictures=False, lr=0.3,
                   seed=5, log=lines.append)
    lines.clear()
    _, history = run_experiment('lenet', out=str(tmp_path), ctx='cpu', pictures=False,
                                log=lines.append, resume=True, epochs=2)
    assert lines[0] == (f'options taken from the checkpoint in {tmp_path / "checkpoint"}: '
                        f'--num-train 500, --num-test 200, --edition first, --lr 0.3, '
                        f'--batch-size 256, --seed 5')  # the smoke preset's, not the book's
    assert not any(line.startswith('learning rate') for line in lines)
    assert history.column('lr') == [0.3, 0.3]
    meta = json.load(open(tmp_path / 'history.json'))['meta']
    assert meta['seed'] == 5
    with pytest.raises(CheckpointError, match='--seed 6 differs'):
        run_experiment('lenet', out=str(tmp_path), ctx='cpu', pictures=False, log=lines.append,
                       resume=True, epochs=3, seed=6)
