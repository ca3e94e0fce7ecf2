"""`python -m chapters.vgg`: bad input gets one line and exit code 2; a run
prints the book's table, trains, writes its files and resumes."""
import json
import os
import subprocess
import sys

import pytest

from chapters import vgg as chapter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('argv, words', [
    (['--ratio', '0'], 'argument --ratio: 0 is not positive'),
    (['--ratio', '-4'], 'argument --ratio: -4 is not positive'),
    (['--ratio', '3'], '--ratio 3 does not divide 64'),
    (['--ratio', 'four'], "'four' is not a whole number"),
    (['--resize', '16'], '--resize 16 is below 32, the smallest input this network takes'),
    (['--lr', '0'], 'argument --lr: 0.0 is not positive'),
    (['--ctx', 'gpu'], '--ctx gpu: no GPU found'),
    (['--ctx', 'gpu:1'], '--ctx gpu:1: no GPU found'),
    (['--ctx', 'tpu'], "--ctx 'tpu': use 'cpu', 'gpu' or 'gpu:N'"),
    (['--ctx', 'cpu:0,gpu:0'], '--ctx gpu:0: no GPU found'),
    (['--ctx', 'cpu:0,cpu:0'], '--ctx cpu:0,cpu:0: a device is named twice'),
    (['--epochs', '2', '--bogus'], 'unrecognized arguments: --bogus'),
])
def test_bad_arguments_get_one_line_and_exit_code_2(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        chapter.main(argv + ['--out', str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1, err
    assert err.startswith('python -m chapters.vgg: error: ')
    assert words in err


def test_unwritable_output_path(capsys, tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('')
    with pytest.raises(SystemExit) as info:
        chapter.main(['--ctx', 'cpu', '--out', str(blocker / 'runs')])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f'cannot write to --out {blocker / "runs"}' in err


def run_chapter(*args):
    return subprocess.run([sys.executable, '-m', 'chapters.vgg', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_a_short_run_prints_trains_writes_and_resumes(tmp_path):
    out = str(tmp_path / 'run')
    common = ['--quick', '--ctx', 'cpu', '--num-train', '100', '--num-test', '50',
              '--no-pictures', '--out', out]
    first = run_chapter(*common, '--epochs', '1')
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].split()[1:] == ['output', 'shape:', '(1,', '64,', '112,', '112)',
                                    'params:', '640']
    assert lines[9].split()[2:] == ['shape:', '(1,', '10)', 'params:', '40,970']
    assert 'training on cpu(0)' in lines
    assert lines[lines.index('training on cpu(0)') - 1].startswith('threads: OMP_NUM_THREADS=')
    assert any(line.startswith('epoch 1, loss ') for line in lines)
    history = json.load(open(os.path.join(out, 'history.json')))
    assert [e['epoch'] for e in history['epochs']] == [1]
    assert history['meta']['num_train'] == 100 and history['meta']['lr'] == 0.05
    assert os.path.getsize(os.path.join(out, 'curves.png')) > 1000

    second = run_chapter(*common, '--epochs', '2', '--resume')
    assert second.returncode == 0, second.stderr
    assert f'resuming after epoch 1 from {os.path.join(out, "checkpoint")}' in second.stdout
    assert 'epoch 1,' not in second.stdout and 'epoch 2, loss' in second.stdout
    history = json.load(open(os.path.join(out, 'history.json')))
    assert [e['epoch'] for e in history['epochs']] == [1, 2]

    mismatched = run_chapter(*common, '--epochs', '3', '--resume', '--ratio', '16')
    assert mismatched.returncode == 1
    assert mismatched.stderr.strip().splitlines()[-1].startswith(
        'python -m chapters.vgg: error: --ratio 16 differs from the run checkpointed in')
    assert len(mismatched.stderr.strip().splitlines()) == 1

    fresh = run_chapter(*common, '--epochs', '1')
    assert fresh.returncode == 0, fresh.stderr
    assert os.path.isfile(os.path.join(out, 'earlier', '1', 'checkpoint', 'history.json'))
    assert os.path.isfile(os.path.join(out, 'earlier', '1', 'history.json'))
