"""python -m d2lnets.reproduce: runs chapters, resumes them, and tabulates
accuracy, time to the book's accuracy and peak memory."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from d2lnets.reproduce import GRACE_SECONDS, markdown_table, time_to_accuracy
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


def start_reproduce(out, *args):
    """reproduce in a process group of its own, as a shell runs it, with Ctrl-C
    handled as in a terminal even when pytest itself was started with SIGINT
    ignored (a background job of a script: `nohup pytest &`); its output read
    line by line."""
    return subprocess.Popen([sys.executable, '-m', 'd2lnets.reproduce', '--out', str(out), *args],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT), start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stopped_after_first_epoch(tmp_path, send):
    """Start a long LeNet run, `send(process)` a signal once its first epoch is
    checkpointed (it is when the second's line is printed); (exit code, stderr,
    the invocation's record, seconds from the signal to the end)."""
    process = start_reproduce(tmp_path, '--chapters', 'lenet', '--', *SMALL, '--epochs', '500')
    for line in process.stdout:
        if line.startswith('epoch 2,'):
            break
    sent = time.monotonic()
    send(process)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):   # the chapter, were it left behind
            os.killpg(process.pid, signal.SIGKILL)
    ended = time.monotonic() - sent
    [session] = json.load(open(tmp_path / 'lenet' / 'reproduce.json'))['sessions']
    return process.returncode, stderr, session, ended


def test_sigterm_ends_the_chapter_and_its_time_is_still_recorded(tmp_path):
    code, stderr, session, ended = stopped_after_first_epoch(tmp_path, lambda p: p.terminate())
    assert code == 143, stderr
    assert ended < GRACE_SECONDS / 2   # passed on to the chapter at once, not after the grace
    assert stderr.strip().splitlines()[-1] == (
        'reproduce: terminated; run the same command again to resume')
    assert session['interrupted'] and session['exit_code'] == -15   # the chapter got it too
    assert session['wall_s'] > 0 and session['cpu_s'] > 0 and session['peak_rss_mib'] > 30
    row = markdown_table(['lenet'], str(tmp_path)).splitlines()[-1]
    assert ' of 500 |' in row and '| 0 of' not in row
    assert row.endswith(' GiB |') and '| - |' not in row.split('|', 7)[-1]   # times and memory


def test_ctrl_c_lets_the_chapter_say_so_and_its_time_is_still_recorded(tmp_path):
    code, stderr, session, _ = stopped_after_first_epoch(
        tmp_path, lambda p: os.killpg(p.pid, signal.SIGINT))   # a terminal signals the group
    assert code == 130, stderr
    assert 'chapters.lenet: interrupted; finished epochs are in the checkpoint' in stderr
    assert stderr.strip().splitlines()[-1] == (
        'reproduce: interrupted; run the same command again to resume')
    assert session['interrupted'] and session['exit_code'] == 130
    assert session['wall_s'] > 0 and session['cpu_s'] > 0


def test_a_second_stop_during_the_grace_ends_the_chapter_now_and_still_records(tmp_path):
    def ctrl_c_then_sigterm(process):   # the chapter never sees the Ctrl-C, so it runs on
        process.send_signal(signal.SIGINT)
        time.sleep(1)
        process.terminate()

    code, stderr, session, ended = stopped_after_first_epoch(tmp_path, ctrl_c_then_sigterm)
    assert code == 130, stderr
    assert ended < GRACE_SECONDS / 2
    assert stderr.strip().splitlines()[-1] == (
        'reproduce: interrupted; run the same command again to resume')
    assert session['interrupted'] and session['exit_code'] == -15
