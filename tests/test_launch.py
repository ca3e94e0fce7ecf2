"""The launcher and dist kvstore training, on 127.0.0.1 with real processes:
one scheduler, one server and two workers running tests/dist_worker.py."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

import d2lnets.training.launch as launch
from d2lnets.data.batches import ImageBatches
from d2lnets.training.loop import train_ch5

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import dist_worker  # noqa: E402


def run_launcher(*args, timeout=120, env=None):
    """Run `python -m d2lnets.training.launch ARGS`; return (CompletedProcess, seconds)."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, '-m', 'd2lnets.training.launch', *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, 'PYTHONPATH': ROOT, **(env or {})})
    return result, time.monotonic() - start


def worker_command(out, kvstore, *extra):
    # The tag marks this job's processes so that the test can look for leftovers.
    return ['--', sys.executable, os.path.join(HERE, 'dist_worker.py'), out, kvstore,
            '--tag', uuid.uuid4().hex, *extra]


def tag_of(command):
    return command[command.index('--tag') + 1]


def running(tag):
    found = subprocess.run(['pgrep', '-f', tag], capture_output=True, text=True)
    return found.stdout.split()


def load_params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def saved_params(net, path):
    net.save_parameters(str(path))
    return load_params(path)


def single_process_params(tmp_path):
    """Train dist_worker's net in one process on the global batches."""
    images, labels = dist_worker.data()
    net = dist_worker.build()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    batches = ImageBatches(images, labels, dist_worker.GLOBAL_BATCH)
    train_ch5(net, batches, batches, dist_worker.GLOBAL_BATCH, trainer, mx.cpu(),
              dist_worker.EPOCHS, log=lambda line: None)
    return saved_params(net, tmp_path / 'single.params')


def test_dist_sync_workers_end_equal_to_one_process(tmp_path):
    result, _ = run_launcher('-n', '2', '-s', '1', '--timeout', '100',
                             *worker_command(str(tmp_path), 'dist_sync'))
    assert result.returncode == 0, result.stdout + result.stderr
    rank0 = load_params(tmp_path / 'rank0.params')
    rank1 = load_params(tmp_path / 'rank1.params')
    single = single_process_params(tmp_path)
    initial = saved_params(dist_worker.build(), tmp_path / 'initial.params')
    for key, value in rank0.items():
        np.testing.assert_array_equal(value, rank1[key])
        np.testing.assert_allclose(value, single[key], rtol=1e-5, atol=1e-6)
    moved = max(np.abs(value - initial[key]).max() for key, value in rank0.items())
    assert moved > 1e-3  # the workers did train
    assert '[worker 0]' in result.stdout and '[worker 1]' in result.stdout


HOROVODRUN = shutil.which('horovodrun', path=os.path.dirname(sys.executable)) or \
    shutil.which('horovodrun')


@pytest.mark.skipif(importlib.util.find_spec('horovod') is None or not HOROVODRUN,
                    reason='Horovod is not installed (HOROVOD_WITH_MXNET=1 pip install '
                           '--no-build-isolation horovod==0.28.1)')
def test_horovod_workers_end_equal_to_one_process(tmp_path):
    result = subprocess.run([HOROVODRUN, '--gloo', '-np', '2', '-H', 'localhost:2',
                             sys.executable, os.path.join(HERE, 'dist_worker.py'),
                             str(tmp_path), 'horovod'], cwd=ROOT, capture_output=True,
                            text=True, timeout=200, env={**os.environ, 'PYTHONPATH': ROOT})
    assert result.returncode == 0, result.stdout + result.stderr
    rank0 = load_params(tmp_path / 'rank0.params')
    rank1 = load_params(tmp_path / 'rank1.params')
    single = single_process_params(tmp_path)
    for key, value in rank0.items():
        np.testing.assert_array_equal(value, rank1[key])
        np.testing.assert_allclose(value, single[key], rtol=1e-5, atol=1e-6)


def test_dist_async_trains_and_ends(tmp_path):
    result, _ = run_launcher('-n', '2', '--timeout', '100',
                             *worker_command(str(tmp_path), 'dist_async'))
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in (0, 1):
        params = load_params(tmp_path / f'rank{rank}.params')
        assert all(np.isfinite(v).all() for v in params.values())


def test_a_worker_exception_ends_the_job_within_seconds(tmp_path):
    command = worker_command(str(tmp_path), 'dist_sync', '--fail-rank', '1')
    result, seconds = run_launcher('-n', '2', *command)
    assert result.returncode == 1
    assert 'fails on purpose' in result.stdout
    assert 'exited with code 1; ending the job' in result.stderr
    assert seconds < 60
    assert running(tag_of(command)) == []


def test_a_hanging_worker_is_ended_at_the_timeout(tmp_path):
    command = worker_command(str(tmp_path), 'dist_sync', '--hang-rank', '0')
    result, seconds = run_launcher('-n', '2', '--timeout', '20', *command)
    assert result.returncode == launch.EXIT_TIMEOUT
    assert 'no end after --timeout 20 s' in result.stderr
    assert seconds < 60
    assert running(tag_of(command)) == []


def test_a_killed_worker_ends_the_job(tmp_path):
    command = worker_command(str(tmp_path), 'dist_sync', '--hang-rank', '1')
    proc = subprocess.Popen([sys.executable, '-m', 'd2lnets.training.launch', '-n', '2', *command],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, 'PYTHONPATH': ROOT})
    tag = tag_of(command)
    workers, deadline = [], time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        found = subprocess.run(['pgrep', '-P', str(proc.pid), '-f', 'dist_worker.py'],
                               capture_output=True, text=True)
        workers = found.stdout.split()
    os.kill(int(workers[0]), 9)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + 9
    assert 'exited with code -9' in stderr
    assert running(tag) == []


def test_hostfile_runs_over_ssh(tmp_path):
    """The ssh path, with an `ssh` that runs the remote command here."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    fake_ssh = bin_dir / 'ssh'
    fake_ssh.write_text('#!/bin/sh\n# ssh -o BatchMode=yes HOST COMMAND\n'
                        'echo "$3" >> "$(dirname "$0")/hosts"\nexec sh -c "$4"\n')
    fake_ssh.chmod(0o755)
    hostfile = tmp_path / 'hosts.txt'
    hostfile.write_text('# two machines\n127.0.0.1\n\nlocalhost\n')
    result, _ = run_launcher('-n', '2', '--hostfile', str(hostfile), '--scheduler-host',
                             '127.0.0.1', '--timeout', '100',
                             *worker_command(str(tmp_path), 'dist_sync'),
                             env={'PATH': f'{bin_dir}{os.pathsep}{os.environ["PATH"]}'})
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted((bin_dir / 'hosts').read_text().split()) == ['127.0.0.1', '127.0.0.1',
                                                                'localhost']
    np.testing.assert_array_equal(*(load_params(tmp_path / f'rank{r}.params')['2.weight']
                                    for r in (0, 1)))


def test_plan_places_roles_and_shares_cores():
    processes = launch.plan(2, 1, port=9000)
    assert [label for label, _, _ in processes] == ['scheduler', 'server 0', 'worker 0',
                                                   'worker 1']
    for label, host, env in processes:
        assert host is None
        assert env['DMLC_PS_ROOT_URI'] == env['DMLC_NODE_HOST'] == '127.0.0.1'
        assert env['DMLC_PS_ROOT_PORT'] == '9000'
        assert (env['DMLC_NUM_WORKER'], env['DMLC_NUM_SERVER']) == ('2', '1')
        assert env['DMLC_ROLE'] == label.split()[0]
    on_hosts = launch.plan(3, 2, hosts=['10.0.0.2', 'localhost'], scheduler_host='10.0.0.1',
                           port=9000)
    assert [host for _, host, _ in on_hosts] == [None, '10.0.0.2', 'localhost', '10.0.0.2',
                                                 'localhost', '10.0.0.2']
    assert [env['DMLC_NODE_HOST'] for _, _, env in on_hosts] == [
        '10.0.0.1', '10.0.0.2', '127.0.0.1', '10.0.0.2', '127.0.0.1', '10.0.0.2']
    assert all(env['DMLC_PS_ROOT_URI'] == '10.0.0.1' for _, _, env in on_hosts)


@pytest.mark.parametrize('args, message', [
    (['-n', '2'], 'no worker command'),
    (['-n', '0', '--', 'true'], 'argument -n/--num-workers: 0 is not positive'),
    (['-n', '2', '--timeout', '-1', '--', 'true'], 'is not positive'),
    (['-n', '2', '--hostfile', '/nonexistent/hosts', '--', 'true'], 'cannot read --hostfile'),
    (['-n', '2', '--scheduler-host', 'no-such-host.invalid', '--', 'true'],
     "cannot find the address of host 'no-such-host.invalid'"),
])
def test_bad_launcher_input_is_one_line(args, message):
    result, _ = run_launcher(*args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert 'Traceback' not in result.stderr


def test_chapter_under_the_launcher(tmp_path):
    out = tmp_path / 'run'
    result, _ = run_launcher('-n', '2', '--timeout', '200', '--', sys.executable, '-m',
                             'chapters.lenet', '--kvstore', 'dist_sync', '--ctx', 'cpu',
                             '--num-train', '200', '--num-test', '100', '--epochs', '1',
                             '--no-pictures', '--out', str(out), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'worker rank 0 of 2, dist_sync' in result.stdout
    assert 'worker rank 1 of 2, dist_sync' in result.stdout
    meta = json.loads((out / 'history.json').read_text())['meta']
    assert (meta['workers'], meta['parallel'], meta['num_train']) == (2, 'dist_sync', 200)
    assert (out / 'checkpoint' / 'model.params').exists()
    assert not (out / 'checkpoint' / 'trainer.states').exists()  # on the servers


def alive(pid):
    """Whether `pid` runs (a zombie waiting to be reaped has ended)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='only Linux ends children with their parent (PR_SET_PDEATHSIG)')
def test_a_sigkilled_launcher_leaves_nothing_running(tmp_path):
    """The scheduler, the server and two workers (which never join, so the job
    would wait --join-timeout) all end within seconds of the launcher's SIGKILL."""
    script = tmp_path / f'sleeper-{uuid.uuid4().hex}.py'
    script.write_text('import time\ntime.sleep(600)\n')
    proc = subprocess.Popen([sys.executable, '-m', 'd2lnets.training.launch', '-n', '2',
                             '--', sys.executable, str(script)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, 'PYTHONPATH': ROOT})
    children, deadline = [], time.monotonic() + 60
    while len(children) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
        found = subprocess.run(['pgrep', '-P', str(proc.pid)], capture_output=True, text=True)
        children = [int(pid) for pid in found.stdout.split()]
    assert len(children) == 4  # scheduler, server, two workers
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in children if alive(pid)]
    for pid in left:  # do not leave them to the next test
        os.kill(pid, 9)
    assert left == [], 'still running after the launcher was killed'
    assert running(script.name) == []
