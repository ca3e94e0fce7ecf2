"""python -m d2lnets.reproduce: runs chapters, resumes them, and tabulates
accuracy, time to the book's accuracy and peak memory."""
import json
import os
import subprocess
import sys

from d2lnets.reproduce import markdown_table, time_to_accuracy
from d2lnets.training.history import History

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ['--num-train', '200', '--num-test', '100', '--ctx', 'cpu', '--no-pictures']


def reproduce(out, *args):
    return subprocess.run([sys.executable, '-m', 'd2lnets.reproduce', '--out', str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def epoch(n, test_acc, seconds):
    return dict(epoch=n, loss=1.0, train_acc=0.5, test_acc=test_acc, time=seconds,
                examples_per_sec=100.0)


def test_time_to_accuracy_sums_the_epochs_up_to_the_first_that_reaches_it():
    history = History([epoch(1, 0.70, 10.0), epoch(2, 0.76, 12.5), epoch(3, 0.74, 11.0)])
    assert time_to_accuracy(history, 0.754) == (2, 22.5)
    assert time_to_accuracy(history, 0.80) is None


def test_runs_a_chapter_then_resumes_it_and_tabulates(tmp_path):
    first = reproduce(tmp_path, '--chapters', 'lenet', '--', *SMALL, '--epochs', '1')
    assert first.returncode == 0, first.stderr
    row = [line for line in first.stdout.splitlines() if line.startswith('| LeNet')][0]
    assert '| 1 of 1 |' in row and '| 0.754 |' in row and 'GiB' in row
    second = reproduce(tmp_path, '--chapters', 'lenet', '--', *SMALL, '--epochs', '2')
    assert second.returncode == 0, second.stderr
    assert 'resuming after epoch 1' in second.stdout
    record = json.load(open(tmp_path / 'lenet' / 'reproduce.json'))
    assert [s['resumed'] for s in record['sessions']] == [False, True]
    assert all(30 < s['peak_rss_mib'] < 8192 and s['exit_code'] == 0 for s in record['sessions'])
    cores = len(os.sched_getaffinity(0))
    assert all(0 < s['cpu_s'] <= s['wall_s'] * cores + 1 for s in record['sessions'])
    row = [line for line in second.stdout.splitlines() if line.startswith('| LeNet')][0]
    assert '| 2 of 2 |' in row


def test_a_failing_chapter_is_reported_and_the_table_still_written(tmp_path):
    result = reproduce(tmp_path, '--chapters', 'lenet', '--table', str(tmp_path / 't.md'),
                       '--', '--lr', '-1')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        'reproduce: error: lenet did not finish (see above); run the same command again to '
        'resume')
    assert '| 0 of 5 |' in (tmp_path / 't.md').read_text()


def test_table_of_nothing_yet():
    table = markdown_table(['vgg'], '/nonexistent')
    assert '| VGG-11 (`vgg`) | 224px, batch 128, lr 0.05 | 0 of 5 | - | 0.909 | not yet | - | - | - |' \
        in table


def test_cpu_time_of_a_record_written_before_it_was_measured_is_unknown(tmp_path):
    """An invocation recorded without cpu_s makes the sum unknown ('-'), not less."""
    (tmp_path / 'lenet').mkdir()
    sessions = [{'wall_s': 60.0, 'peak_rss_mib': 300.0},
                {'wall_s': 60.0, 'cpu_s': 100.0, 'peak_rss_mib': 300.0}]
    (tmp_path / 'lenet' / 'reproduce.json').write_text(json.dumps({'sessions': sessions}))
    row = markdown_table(['lenet'], str(tmp_path)).splitlines()[-1]
    assert row.endswith('| 2 min 00 s | - | 0.3 GiB |')
    (tmp_path / 'lenet' / 'reproduce.json').write_text(json.dumps({'sessions': sessions[1:]}))
    row = markdown_table(['lenet'], str(tmp_path)).splitlines()[-1]
    assert row.endswith('| 1 min 00 s | 1 min 40 s | 0.3 GiB |')
