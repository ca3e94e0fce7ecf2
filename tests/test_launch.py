"""The launcher and dist kvstore training, on 127.0.0.1 with real processes:
one scheduler, one server and two workers running tests/dist_worker.py."""
import importlib.util
import io
import json
import os
import select
import shlex
import shutil
import signal
import socket
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


# In-process tests of the launcher's parts (what mutmut can map to functions):
# the jobs below run small shell commands, not MXNet.

EXPECTATIONS = os.path.join(HERE, 'expectations')
PROG = 'python -m d2lnets.training.launch'


def test_a_free_port_is_an_ephemeral_port_nothing_listens_on():
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
        low, high = map(int, f.read().split())
    port = launch.free_port('127.0.0.1')
    assert isinstance(port, int) and low <= port <= high
    with socket.create_server(('127.0.0.1', port)):  # free: it can be bound
        pass


def test_a_hostfile_is_hosts_one_a_line_without_comments_or_blanks(tmp_path):
    hostfile = tmp_path / 'hosts'
    hostfile.write_text('# the cluster\n10.0.0.2  # first\n\n   \n  node-b\n')
    assert launch.read_hostfile(hostfile) == ['10.0.0.2', 'node-b']
    hostfile.write_text('# nobody\n\n')
    with pytest.raises(launch.LaunchError) as info:
        launch.read_hostfile(hostfile)
    assert str(info.value) == f'--hostfile {hostfile} names no host; write one host a line'
    with pytest.raises(launch.LaunchError) as info:
        launch.read_hostfile(tmp_path / 'missing')
    assert str(info.value) == (f'cannot read --hostfile {tmp_path / "missing"} '
                               f'(No such file or directory)')


def test_an_address_is_the_hosts_ipv4_address_or_one_line():
    assert launch.address('localhost') == '127.0.0.1'
    assert launch.address('10.0.0.2') == '10.0.0.2'
    with pytest.raises(launch.LaunchError) as info:
        launch.address('no-such-host.invalid')
    assert str(info.value) == ("cannot find the address of host 'no-such-host.invalid'; "
                               "check the host file or give an IP address")


def test_the_plan_gives_servers_and_the_scheduler_one_thread_and_the_scheduler_ps_verbose(
        monkeypatch):
    monkeypatch.setattr(launch._threads, 'SET_BY_D2LNETS', False)
    monkeypatch.delenv('PS_VERBOSE', raising=False)
    envs = {label: env for label, _, env in launch.plan(2, 2, port=9000)}
    assert envs['scheduler'] == {
        'DMLC_PS_ROOT_URI': '127.0.0.1', 'DMLC_PS_ROOT_PORT': '9000', 'DMLC_NUM_SERVER': '2',
        'DMLC_NUM_WORKER': '2', 'DMLC_ROLE': 'scheduler', 'DMLC_NODE_HOST': '127.0.0.1',
        'OMP_NUM_THREADS': '1', 'PS_VERBOSE': '1'}
    for label in ('server 0', 'server 1'):
        assert envs[label]['OMP_NUM_THREADS'] == '1' and 'PS_VERBOSE' not in envs[label]
    for label in ('worker 0', 'worker 1'):  # the user's threads, not set here
        assert 'OMP_NUM_THREADS' not in envs[label] and 'PS_VERBOSE' not in envs[label]
    monkeypatch.setenv('PS_VERBOSE', '2')
    assert launch.plan(1, 1, port=9000)[0][2]['PS_VERBOSE'] == '2'


@pytest.mark.parametrize('cores, threads', [(8, '4'), (1, '1')])
def test_workers_here_share_the_cores_the_library_chose(monkeypatch, cores, threads):
    """The two workers here share the cores (at least one thread each); the one
    on another host keeps its own; servers and the scheduler take one."""
    monkeypatch.setattr(launch._threads, 'SET_BY_D2LNETS', True)
    monkeypatch.setattr(launch._threads, 'usable_cores', lambda: cores)
    processes = launch.plan(3, 1, hosts=['10.0.0.2', None, 'localhost', None],
                            port=9000)
    placed = {label: (host, env['OMP_NUM_THREADS'] if 'OMP_NUM_THREADS' in env else None)
              for label, host, env in processes}
    assert placed == {'scheduler': (None, '1'), 'server 0': ('10.0.0.2', '1'),
                      'worker 0': (None, threads), 'worker 1': ('localhost', None),
                      'worker 2': (None, threads)}


def test_without_a_port_the_plan_takes_a_free_one():
    processes = launch.plan(1, 1)
    ports = {env['DMLC_PS_ROOT_PORT'] for _, _, env in processes}
    assert len(ports) == 1 and int(ports.pop()) >= 1024


def test_the_command_line_runs_workers_here_servers_as_mxnet_and_others_over_ssh(
        monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv = ['python', 'train.py', '--name', "it's"]
    worker = {'DMLC_ROLE': 'worker', 'DMLC_NODE_HOST': '10.0.0.2', 'X': 'a b'}
    assert launch.command_line(argv, worker, None) is argv
    assert launch.command_line(argv, dict(worker, DMLC_ROLE='server'), None,
                               python='/py') == ['/py', '-c', 'import mxnet']
    assert launch.command_line(argv, dict(worker, DMLC_ROLE='scheduler'), None) == [
        sys.executable, '-c', 'import mxnet']
    remote = launch.command_line(argv, worker, '10.0.0.2')
    command = (f"cd {tmp_path} && exec env DMLC_NODE_HOST=10.0.0.2 DMLC_ROLE=worker "
               f"X='a b' python train.py --name 'it'\"'\"'s'")
    assert remote[:4] == ['ssh', '-o', 'BatchMode=yes', '10.0.0.2']
    assert remote[4:] == [
        'sh -c ' + shlex.quote(f'exec 3<&0; {command} & child=$!; (read -r _ <&3; kill -TERM '
                               f'$child) >/dev/null 2>&1 & watchdog=$!; wait $child; '
                               f'status=$?; kill $watchdog 2>/dev/null; exit $status')]
    server = launch.command_line(argv, dict(worker, DMLC_ROLE='server'), 'node-b', python='/py')
    assert server[3] == 'node-b' and server[4].endswith(
        "X='\"'\"'a b'\"'\"' /py -c '\"'\"'import mxnet'\"'\"' & child=$!; (read -r _ <&3; "
        "kill -TERM $child) >/dev/null 2>&1 & watchdog=$!; wait $child; status=$?; "
        "kill $watchdog 2>/dev/null; exit $status'")


SHOW_DEATH_SIGNAL = ('import ctypes; sig = ctypes.c_int(); '
                     'ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0); print(sig.value)')


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux')
def test_a_process_started_with_die_with_launcher_gets_sigkill_when_the_launcher_dies():
    result = subprocess.run([sys.executable, '-c', SHOW_DEATH_SIGNAL], capture_output=True,
                            text=True, timeout=30, preexec_fn=launch.die_with_launcher())
    assert (result.returncode, result.stdout) == (0, '9\n')
    plain = subprocess.run([sys.executable, '-c', SHOW_DEATH_SIGNAL], capture_output=True,
                           text=True, timeout=30)
    assert plain.stdout == '0\n'


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux')
def test_a_process_whose_launcher_died_before_it_asked_for_the_signal_kills_itself():
    """The preexec run in a process whose parent is not the launcher (here a
    grandchild of the test) ends it with SIGKILL at once."""
    preexec = launch.die_with_launcher()
    child = os.fork()
    if child == 0:
        try:
            grandchild = os.fork()
            if grandchild == 0:
                try:
                    preexec()
                finally:
                    os._exit(0)
            _, status = os.waitpid(grandchild, 0)
            os._exit(100 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 100 + signal.SIGKILL


WORKER = {'DMLC_ROLE': 'worker'}
JOINED = f'ps-lite/src/van.cc:1: {launch.JOINED_MARK} 2 nodes'


def shell(script):
    return ['sh', '-c', script]


@pytest.fixture
def job():
    """A Job whose relayed lines go to `job.log`; every process ended after the test."""
    log = io.StringIO()
    job = launch.Job(log=log)
    job.log = log
    yield job
    for _, proc in job.processes:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()


def relayed(job):
    return sorted(job.log.getvalue().splitlines())


def test_a_job_relays_each_line_with_its_label_and_ends_0_when_its_workers_do(
        job, monkeypatch, capsys):
    monkeypatch.delenv('PS_VERBOSE', raising=False)
    job.start('scheduler', shell(f"echo '{JOINED}'; echo ready; sleep 0.3; echo bye"), WORKER,
              None)
    job.start('worker 0', shell('sleep 0.5; echo trained; printf "\\377 odd\\n" >&2; '
                                'echo "ends in X"; echo "two spaces  "'), WORKER, None)
    job.start('worker 1', shell('echo "$DMLC_ROLE $X"'), dict(WORKER, X='y'), None)
    start = time.monotonic()
    assert job.wait() == 0
    assert time.monotonic() - start < launch.GRACE_SECONDS  # the scheduler ended by itself
    assert relayed(job) == ['[scheduler] bye', '[scheduler] ready', '[worker 0] ends in X',
                            '[worker 0] trained', '[worker 0] two spaces  ',
                            '[worker 0] \ufffd odd', '[worker 1] worker y']
    assert [proc.returncode for _, proc in job.processes] == [0, 0, 0]
    assert capsys.readouterr().err == ''


def test_ps_verbose_shows_the_schedulers_ps_lite_lines(monkeypatch):
    monkeypatch.setenv('PS_VERBOSE', '1')
    job = launch.Job(log=io.StringIO())
    job.start('scheduler', shell(f"echo '{JOINED}'"), WORKER, None)
    job.start('worker 0', shell('echo done'), WORKER, None)
    assert job.wait() == 0
    assert sorted(job._log.getvalue().splitlines()) == [f'[scheduler] {JOINED}',
                                                        '[worker 0] done']
    assert job.joined.is_set()


def test_each_process_gets_the_jobs_stdin_its_own_session_and_sigkill_at_the_launchers_death(
        job):
    job.start('worker 0', shell('read line; echo "got $line"'), WORKER, None)
    job.start('worker 1', [sys.executable, '-c', 'import os; print(os.getsid(0) == os.getpid())'],
              WORKER, None)
    job.start('worker 2', [sys.executable, '-c', SHOW_DEATH_SIGNAL], WORKER, None)
    stdin = job.processes[0][1].stdin
    stdin.write(b'hello\n')
    stdin.flush()
    for _, proc in job.processes:
        proc.wait(timeout=30)
    job.end()
    assert relayed(job) == ['[worker 0] got hello', '[worker 1] True', '[worker 2] 9']


def test_relayed_lines_are_flushed_as_they_come(job):
    read_end, write_end = os.pipe()
    job._log = os.fdopen(write_end, 'w')
    job.start('worker 0', shell('echo one'), WORKER, None)
    job.processes[0][1].wait(timeout=30)
    job.end()
    assert select.select([read_end], [], [], 5)[0] == [read_end]
    assert os.read(read_end, 100) == b'[worker 0] one\n'
    job._log.close()
    os.close(read_end)


def test_a_remote_process_is_started_over_ssh_with_the_launchers_environment(
        job, tmp_path, monkeypatch):
    fake_ssh = tmp_path / 'ssh'
    fake_ssh.write_text('#!/bin/sh\necho "$3 HOME=$HOME DMLC_ROLE=$DMLC_ROLE"\n')
    fake_ssh.chmod(0o755)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    job.start('worker 0', ['true'], WORKER, 'node-b')
    job.processes[0][1].wait(timeout=30)
    job.end()
    assert relayed(job) == [f'[worker 0] node-b HOME={os.environ["HOME"]} DMLC_ROLE=']


def test_a_command_that_cannot_start_is_a_launch_error(job):
    with pytest.raises(launch.LaunchError) as info:
        job.start('worker 3', ['/nonexistent/train'], WORKER, None)
    assert str(info.value) == 'cannot start worker 3: No such file or directory: /nonexistent/train'
    assert job.processes == []


@pytest.mark.parametrize('script, code, said', [
    ('exit 1', 1, 'worker 1 exited with code 1; ending the job'),
    ('exit 3', 3, 'worker 1 exited with code 3; ending the job'),
    ('kill -9 $$', 137, 'worker 1 exited with code -9; ending the job'),
])
def test_a_worker_that_fails_ends_the_job_with_its_code(job, capsys, script, code, said):
    job.start('scheduler', shell(f"echo '{JOINED}'; sleep 20"), WORKER, None)
    job.start('worker 0', shell('sleep 20'), WORKER, None)
    job.start('worker 1', shell(f'sleep 0.3; {script}'), WORKER, None)
    start = time.monotonic()
    assert job.wait() == code
    assert time.monotonic() - start < 10
    assert capsys.readouterr().err == f'launch: {said}\n'
    assert [proc.returncode for _, proc in job.processes[:2]] == [-15, -15]


def test_a_worker_that_ends_before_the_job_joined_ends_the_job(job, capsys, monkeypatch):
    monkeypatch.setattr(launch, 'JOIN_GRACE_SECONDS', 0.5)
    job.start('scheduler', shell('sleep 20'), WORKER, None)
    job.start('worker 0', shell('sleep 20'), WORKER, None)
    job.start('worker 1', shell('true'), WORKER, None)
    start = time.monotonic()
    assert job.wait() == 1
    assert 0.5 <= time.monotonic() - start < 10
    assert capsys.readouterr().err == (
        'launch: worker 1 exited with code 0 before every worker had joined the parameter '
        'server, so the others would wait forever; ending the job (the worker command must '
        'create a dist kvstore, e.g. --kvstore dist_sync)\n')
    assert [proc.returncode for _, proc in job.processes] == [-15, -15, 0]


def test_a_worker_that_ends_just_before_the_scheduler_says_so_is_waited_for(job, monkeypatch):
    monkeypatch.setattr(launch, 'JOIN_GRACE_SECONDS', 5)
    job.start('scheduler', shell(f"sleep 0.5; echo '{JOINED}'"), WORKER, None)
    job.start('worker 0', shell('true'), WORKER, None)
    assert job.wait() == 0


def test_a_job_that_does_not_join_in_time_is_ended(job, capsys):
    job.start('scheduler', shell('sleep 20'), WORKER, None)
    job.start('worker 0', shell('sleep 20'), WORKER, None)
    start = time.monotonic()
    assert job.wait(join_timeout=0.5) == launch.EXIT_TIMEOUT
    assert 0.5 <= time.monotonic() - start < 10
    assert capsys.readouterr().err == ('launch: the workers did not all join the parameter '
                                       'server within --join-timeout 0.5 s; ending the job\n')
    assert [proc.returncode for _, proc in job.processes] == [-15, -15]


def test_a_job_that_does_not_end_in_time_is_ended(job, capsys):
    job.start('scheduler', shell(f"echo '{JOINED}'; sleep 20"), WORKER, None)
    job.start('worker 0', shell('sleep 20'), WORKER, None)
    start = time.monotonic()
    assert job.wait(timeout=0.5) == launch.EXIT_TIMEOUT
    assert 0.5 <= time.monotonic() - start < 10
    assert capsys.readouterr().err == 'launch: no end after --timeout 0.5 s; ending the job\n'
    assert [proc.returncode for _, proc in job.processes] == [-15, -15]


def test_end_waits_its_grace_then_terminates_then_kills(job, monkeypatch):
    monkeypatch.setattr(launch, 'GRACE_SECONDS', 0.5)
    job.start('worker 0', shell('sleep 0.3'), WORKER, None)
    job.start('worker 1', shell('sleep 20'), WORKER, None)
    job.start('worker 2', shell('trap "" TERM; sleep 20'), WORKER, None)
    start = time.monotonic()
    job.end(grace=1)
    assert 1.5 <= time.monotonic() - start < 10
    assert [proc.returncode for _, proc in job.processes] == [0, -15, -9]
    launch._signal_group(job.processes[0][1], signal.SIGTERM)  # gone: nothing to signal


def test_end_terminates_at_once_by_default(job):
    job.start('worker 0', shell('sleep 0.6'), WORKER, None)
    job.end()
    assert job.processes[0][1].returncode == -15


def test_end_waits_a_second_for_output_held_by_a_process_outside_the_job(job):
    """A process that left the job's session keeps its output open: the relay
    is not waited for past a second, and being a daemon it cannot hold the
    launcher's exit either."""
    job.start('worker 0', shell('setsid sleep 4 & echo started'), WORKER, None)
    job.processes[0][1].wait(timeout=30)
    start = time.monotonic()
    job.end()
    assert 0.9 <= time.monotonic() - start < 2.0  # join(2) would take 2 s
    assert relayed(job) == ['[worker 0] started']
    assert [relay.daemon for relay in job._relays] == [True]


class FakeJob:
    """Stands in for Job in main: records what main asks of it."""
    made = []

    def __init__(self):
        self.started, self.waited, self.said, self.ended = [], [], [], 0
        FakeJob.made.append(self)

    def start(self, label, argv, env, host):
        if 'fail_start' in argv:
            raise launch.LaunchError(f'cannot start {label}: nope')
        self.started.append((label, argv, env, host))

    def wait(self, timeout, join_timeout):
        self.waited.append((timeout, join_timeout))
        outcome = self.started[-1][1][-1]
        if outcome == 'interrupt':
            raise KeyboardInterrupt
        if outcome == 'terminate':
            raise SystemExit(143)
        return int(outcome)

    def say(self, message):
        self.said.append(message)

    def end(self):
        self.ended += 1


@pytest.fixture
def fake_job(monkeypatch):
    FakeJob.made = []
    handlers = {}
    monkeypatch.setattr(launch, 'Job', FakeJob)
    monkeypatch.setattr(launch.signal, 'signal', lambda sig, handler: handlers.update({sig: handler}))
    return handlers


def run_main(argv):
    with pytest.raises(SystemExit) as info:
        launch.main(argv)
    return info.value.code


def test_main_starts_the_planned_processes_and_exits_with_the_jobs_code(fake_job, monkeypatch):
    monkeypatch.setattr(launch._threads, 'SET_BY_D2LNETS', False)
    monkeypatch.delenv('PS_VERBOSE', raising=False)
    command = ['true', '3']
    assert run_main(['-n', '2', '-s', '1', '--port', '9000', '--timeout', '5',
                     '--join-timeout', '7', '--', *command]) == 3
    job, = FakeJob.made
    assert job.started == [(label, command, env, host)
                           for label, host, env in launch.plan(2, 1, port=9000)]
    assert job.waited == [(5.0, 7.0)] and job.said == [] and job.ended == 1
    with pytest.raises(SystemExit) as info:
        fake_job[signal.SIGTERM]()
    assert info.value.code == 128 + signal.SIGTERM
    assert run_main(['-n', '1', '--', 'true', '0']) == 0
    assert FakeJob.made[1].waited == [(None, launch.JOIN_TIMEOUT)]


@pytest.mark.parametrize('last, code, said', [
    ('fail_start', 2, 'error: cannot start scheduler: nope; ending the job'),
    ('interrupt', 130, 'interrupted; ending the job'),
    ('terminate', 143, 'terminated; ending the job'),
])
def test_main_ends_the_job_when_it_is_stopped(fake_job, last, code, said):
    assert run_main(['-n', '1', '--', 'true', last]) == code
    job, = FakeJob.made
    assert job.said == [said] and job.ended == 1


def test_main_with_a_hostfile_puts_the_scheduler_at_this_machines_address(
        fake_job, tmp_path, monkeypatch):
    hostfile = tmp_path / 'hosts'
    hostfile.write_text('10.0.0.2\n10.0.0.3\n')
    real = socket.gethostbyname
    monkeypatch.setattr(launch.socket, 'gethostname', lambda: 'head-node')
    monkeypatch.setattr(launch.socket, 'gethostbyname',
                        lambda host: '10.0.0.1' if host == 'head-node' else real(host))
    assert run_main(['-n', '2', '--hostfile', str(hostfile), '--port', '9000', '--',
                     'nowhere-here', '0']) == 0
    started = FakeJob.made[0].started
    assert [(label, host) for label, _, _, host in started] == [
        ('scheduler', None), ('server 0', '10.0.0.2'), ('worker 0', '10.0.0.3'),
        ('worker 1', '10.0.0.2')]
    assert {env['DMLC_PS_ROOT_URI'] for _, _, env, _ in started} == {'10.0.0.1'}
    assert run_main(['-n', '1', '--hostfile', str(hostfile), '--scheduler-host', '10.0.0.9',
                     '--port', '9000', '--', 'true', '0']) == 0
    assert {env['DMLC_PS_ROOT_URI'] for _, _, env, _ in FakeJob.made[1].started} == {'10.0.0.9'}
    assert run_main(['-n', '1', '--port', '9000', '--', 'true', '0']) == 0
    assert {env['DMLC_PS_ROOT_URI'] for _, _, env, _ in FakeJob.made[2].started} == {'127.0.0.1'}


@pytest.mark.parametrize('argv, message', [
    (['--hostfile', '/nonexistent/hosts'],
     'cannot read --hostfile /nonexistent/hosts (No such file or directory)'),
    (['--scheduler-host', '192.0.2.1'], '[Errno 99] Cannot assign requested address'),
])
def test_main_refuses_a_job_it_cannot_place_in_one_line(fake_job, capsys, argv, message):
    assert run_main(['-n', '1', *argv, '--', 'true', '0']) == 2
    assert capsys.readouterr().err == f'{PROG}: error: {message}\n'
    assert FakeJob.made == []


def test_the_launch_help_names_every_option(capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '80')
    with pytest.raises(SystemExit) as info:
        launch.parse_args(['--help'])
    assert info.value.code == 0
    with open(os.path.join(EXPECTATIONS, 'launch_help.txt')) as f:
        assert capsys.readouterr().out.replace('optional arguments:', 'options:') == f.read()


def test_the_launch_options_and_their_defaults():
    args = launch.parse_args(['-n', '2', '--', sys.executable, '-c', 'pass'])
    assert vars(args) == {'num_workers': 2, 'num_servers': 1, 'hostfile': None,
                          'scheduler_host': None, 'port': None, 'timeout': None,
                          'join_timeout': launch.JOIN_TIMEOUT,
                          'command': [sys.executable, '-c', 'pass']}
    args = launch.parse_args(['--num-workers', '256', '--num-servers', '3', '--port', '65535',
                              '--timeout', '0.5', '--join-timeout', '2', 'true', '--', 'x'])
    assert (args.num_workers, args.num_servers, args.port, args.timeout, args.join_timeout,
            args.command) == (256, 3, 65535, 0.5, 2.0, ['true', '--', 'x'])
    # with --hostfile the program runs on the hosts, so it is not looked for here
    assert launch.parse_args(['-n', '1', '--hostfile', 'h', '--', 'nowhere-here']).command == [
        'nowhere-here']


@pytest.mark.parametrize('argv, message', [
    (['-n', '2'], 'no worker command: put it after --, e.g. -- python train.py'),
    (['-n', '2', '--'], 'no worker command: put it after --, e.g. -- python train.py'),
    (['--', 'true'], 'the following arguments are required: -n/--num-workers'),
    (['-n', '257', '--', 'true'],
     'argument -n/--num-workers: 257 is above 256, the most processes of one kind a job starts'),
    (['-n', '1', '-s', '0', '--', 'true'], 'argument -s/--num-servers: 0 is not positive'),
    (['-n', '1', '--port', '65536', '--', 'true'],
     'argument --port: 65536 is above 65535, the highest TCP port'),
    (['-n', '1', '--join-timeout', '0', '--', 'true'],
     'argument --join-timeout: 0.0 is not positive'),
    (['-n', '1', '--', 'nowhere-here', 'x'],
     'worker command nowhere-here not found; give a path to it or a program on PATH'),
    (['-n', '1', '--', sys.executable, '/nonexistent/train.py'],
     f'worker script /nonexistent/train.py not found; check the path after {sys.executable}'),
])
def test_launch_arguments_that_cannot_run_are_refused_in_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        launch.parse_args(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err == f'{PROG}: error: {message} (see --help)\n'


def test_only_a_missing_program_or_pythons_missing_script_is_refused(tmp_path):
    script = tmp_path / 'train.py'
    script.write_text('')
    assert launch.missing_program([sys.executable, str(script)]) is None
    assert launch.missing_program([sys.executable]) is None
    assert launch.missing_program([sys.executable, '-m', 'chapters.lenet']) is None
    assert launch.missing_program([sys.executable, 'notes.txt']) is None
    assert launch.missing_program(['sh', 'missing.py']) is None
    assert launch.missing_program([sys.executable, 'missing.py']) == (
        f'worker script missing.py not found; check the path after {sys.executable}')
