"""run_experiment(recipe, preset) trains exactly what the chapter's command line trains."""
import re

import mxnet as mx
import pytest

from chapters import lenet as lenet_chapter
from d2lnets.experiment import run_experiment
from d2lnets.recipes import UnknownRecipeError, get_recipe

EPOCH = re.compile(r'^epoch \d+, loss [\d.]+, train acc [\d.]+, test acc [\d.]+')


def epoch_lines(text):
    return [EPOCH.match(line).group(0) for line in text.splitlines() if EPOCH.match(line)]


def test_the_smoke_preset_equals_the_command_line_with_the_same_settings(tmp_path, capsys):
    lines = []
    net, history = run_experiment('lenet', 'smoke', out=str(tmp_path / 'py'), ctx=mx.cpu(),
                                  pictures=False, log=lines.append, epochs=2)
    smoke = get_recipe('lenet').settings('smoke')
    lenet_chapter.main(['--num-train', str(smoke['num_train']), '--num-test',
                        str(smoke['num_test']), '--epochs', '2', '--ctx', 'cpu', '--no-pictures',
                        '--out', str(tmp_path / 'cli')])
    from_cli = epoch_lines(capsys.readouterr().out)
    assert len(history) == 2 and len(from_cli) == 2
    assert epoch_lines('\n'.join(lines)) == from_cli
    assert (tmp_path / 'py' / 'history.json').exists()
    assert net[0].weight.shape == (6, 1, 5, 5)


def test_resume_continues_the_checkpointed_run(tmp_path):
    lines = []
    run_experiment('lenet', 'smoke', out=str(tmp_path), ctx='cpu', pictures=False,
                   log=lines.append)
    _, history = run_experiment('lenet', 'smoke', out=str(tmp_path), ctx='cpu', pictures=False,
                                log=lines.append, resume=True, epochs=2)
    assert len(history) == 2 and any(line.startswith('resuming after epoch 1') for line in lines)


def test_unknown_chapter_or_setting_is_refused():
    with pytest.raises(UnknownRecipeError, match='valid: lenet'):
        run_experiment('lenet7')
    with pytest.raises(TypeError, match='has no setting ratio'):
        run_experiment('lenet', 'smoke', ratio=2)
