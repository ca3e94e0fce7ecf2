"""A training's thread count follows the machine's load: steps run on the
calling thread while the start-up count fits, and on a thread whose OpenMP
count is the one the load calls for once two checks in a row agree; the
engine d2lnets runs on the CPU runs operators on the calling thread, which
is what makes that work."""
import ctypes
import os
import subprocess
import sys
import threading

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init, nd
from mxnet.gluon import nn

from d2lnets import _threads
from d2lnets.training import load_follower as lf
from d2lnets.training.loop import train_ch5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOMP = ctypes.CDLL('libgomp.so.1')
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'MXNET_ENGINE_TYPE',
                    'HOROVOD_LOCAL_SIZE', 'OMPI_COMM_WORLD_LOCAL_SIZE', 'DMLC_ROLE')


def where_it_ran():
    """(thread id, that thread's OpenMP thread count)."""
    return threading.get_ident(), GOMP.omp_get_max_threads()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def follower_of(monkeypatch):
    """A follower that started on `home` of `usable` cores, with a fake
    clock that jumps past every check and a fake load read from a list."""
    def make(home, usable, loads):
        monkeypatch.setattr(_threads, 'CHOICE', _threads.ThreadChoice(
            threads=home, usable=usable, others=0.0, env={}, user_set=(),
            engine=_threads.CPU_ENGINE))
        monkeypatch.setattr(_threads, 'usable_cores', lambda: usable)
        readings, lines, clock = iter(loads), [], Clock()

        def measure():
            clock.now += lf.CHECK_SECONDS  # the next run() checks again
            return next(readings)
        follower = lf.LoadFollower(True, log=lines.append, measure=measure, clock=clock)
        clock.now = lf.CHECK_SECONDS
        return follower, lines
    return make


def test_steps_move_to_a_one_thread_team_when_the_load_stays_and_back_when_it_ends(follower_of):
    follower, lines = follower_of(home=2, usable=2, loads=[1.0, 1.2, 1.1, 0.0, 0.1, 0.0])
    me = threading.get_ident()
    seen = [follower.run(where_it_ran) for _ in range(6)]
    assert seen[0][0] == me  # one busy check is not enough
    worker = seen[1][0]
    assert worker != me and [s for s in seen[1:4]] == [(worker, 1)] * 3
    assert seen[4][0] == me  # one quiet check is not enough either
    assert seen[5][0] == me
    assert lines == [
        'threads: other programs now use 1.2 of the 2 cores: training on 1 thread from here '
        '(set OMP_NUM_THREADS before starting Python to keep one count)',
        'threads: the other programs have stopped (they use 0.1 cores): training on 2 threads '
        'from here (set OMP_NUM_THREADS before starting Python to keep one count)']


def test_a_spike_between_quiet_checks_changes_nothing(follower_of):
    follower, lines = follower_of(home=2, usable=2, loads=[0.0, 1.5, 0.2, 1.5, 0.0])
    me = threading.get_ident()
    assert {follower.run(where_it_ran)[0] for _ in range(5)} == {me} and lines == []


def test_a_quiet_machine_gives_a_busy_start_every_core(follower_of):
    """Started beside other work on one thread; they ended: all four cores,
    on a thread whose OpenMP count is set to four (not inherited)."""
    follower, lines = follower_of(home=1, usable=4, loads=[0.0, 0.0, 0.3])
    seen = [follower.run(where_it_ran) for _ in range(3)]
    assert seen[0][0] == threading.get_ident()
    assert seen[1][1] == seen[2][1] == 4 and seen[1][0] == seen[2][0]
    assert lines[0].startswith('threads: the other programs have stopped (they use 0.0 cores): '
                               'training on 4 threads from here')


def test_the_free_cores_of_a_partly_busy_machine(follower_of):
    follower, lines = follower_of(home=8, usable=8, loads=[2.5, 2.5])
    assert [follower.run(where_it_ran)[1] for _ in range(2)][1] == 5  # floor(8 - 2.5)
    assert lines[0].startswith('threads: other programs now use 2.5 of the 8 cores: training '
                               'on 5 threads from here')


def test_an_unreadable_load_changes_nothing(follower_of):
    follower, lines = follower_of(home=2, usable=2, loads=[None, None, None])
    assert {follower.run(where_it_ran)[0] for _ in range(3)} == {threading.get_ident()}


def test_the_load_is_measured_every_few_seconds_not_every_step(monkeypatch):
    monkeypatch.setattr(_threads, 'CHOICE', _threads.ThreadChoice(
        threads=2, usable=2, others=0.0, env={}, user_set=(), engine=_threads.CPU_ENGINE))
    clock, calls = Clock(), []
    follower = lf.LoadFollower(True, measure=lambda: calls.append(clock.now) or 0.0, clock=clock)
    for clock.now in np.arange(0, 2.5 * lf.CHECK_SECONDS, lf.CHECK_SECONDS / 4):
        follower.run(lambda: None)
    assert calls == [lf.CHECK_SECONDS, 2 * lf.CHECK_SECONDS]


def test_a_step_that_fails_on_another_thread_raises_its_own_error(follower_of):
    follower, _ = follower_of(home=2, usable=2, loads=[1.0, 1.0, 1.0])
    follower.run(where_it_ran)

    def fail():
        raise ValueError(f'failed on {threading.get_ident()}')
    with pytest.raises(ValueError, match='failed on') as caught:
        follower.run(fail)
    assert str(threading.get_ident()) not in str(caught.value)


def test_disabled_every_step_runs_on_the_calling_thread():
    follower = lf.LoadFollower(False, measure=lambda: pytest.fail('measured'),
                               clock=lambda: 1e9)
    assert follower.run(where_it_ran)[0] == threading.get_ident()


def test_it_follows_only_a_count_d2lnets_chose_for_the_cpu(monkeypatch):
    def choice(**changes):
        values = dict(threads=2, usable=2, others=0.1, env={}, user_set=(),
                      engine=_threads.CPU_ENGINE)
        return _threads.ThreadChoice(**{**values, **changes})
    cpu = [mx.cpu()]
    for chosen, ctxs, expected in [
            (choice(), cpu, True), (choice(), [mx.cpu(0), mx.cpu(1)], True),
            (choice(), [mx.gpu(0)], False),
            (choice(user_set=('OMP_NUM_THREADS',)), cpu, False),
            (choice(others=None), cpu, False),  # the load could not be measured
            (choice(engine=None), cpu, False),  # MXNet's threaded engine
            (None, cpu, False)]:  # MXNet was loaded before d2lnets
        monkeypatch.setattr(_threads, 'CHOICE', chosen)
        assert lf.can_follow(ctxs) is expected, (chosen, ctxs)


def test_the_load_is_other_programs_time_less_this_processs_and_its_childrens(monkeypatch):
    samples = iter([(10.0, 100.0, 4.0), (12.0, 104.0, 5.5), (12.0, 105.0, 5.5)])
    monkeypatch.setattr(lf.OthersLoad, '_sample', lambda self: next(samples))
    load = lf.OthersLoad()
    assert load() == pytest.approx((4.0 - 1.5) / 2.0)
    assert load() is None  # no time passed


def test_children_cpu_time_is_read_from_proc(tmp_path):
    """Two children listed by two threads of this process; one ended before
    its stat was read; a command name with a ')' in it."""
    for tid, pids in (('100', '7 8'), ('101', '9')):
        (tmp_path / 'self' / 'task' / tid).mkdir(parents=True)
        (tmp_path / 'self' / 'task' / tid / 'children').write_text(pids + ' ')
    for pid, name, utime, stime in (('7', 'python', 30, 5), ('9', 'a) b', 100, 0)):
        (tmp_path / pid).mkdir()
        fields = ['S', '1'] + ['0'] * 9 + [str(utime), str(stime)] + ['0'] * 30
        (tmp_path / pid / 'stat').write_text(f'{pid} ({name}) ' + ' '.join(fields))
    assert lf.children_cpu_seconds(100, proc=str(tmp_path)) == pytest.approx(1.35)


@pytest.mark.skipif(not os.path.exists('/proc/self/task'), reason='Linux only')
def test_a_data_loader_child_is_this_trainings_work_not_load():
    ticks = os.sysconf('SC_CLK_TCK')
    before = lf.children_cpu_seconds(ticks)
    child = subprocess.Popen([sys.executable, '-c', 'import time\nt = time.process_time()\n'
                              'while time.process_time() - t < 0.5: pass\ninput()'],
                             stdin=subprocess.PIPE)
    try:
        for _ in range(100):
            if lf.children_cpu_seconds(ticks) - before >= 0.4:
                break
            threading.Event().wait(0.05)
        assert lf.children_cpu_seconds(ticks) - before >= 0.4
    finally:
        child.communicate(b'\n', timeout=30)


def dense_net(seed=0):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    net.add(nn.Dense(16, activation='relu'), nn.Dense(3))
    net.initialize(init.Xavier(), ctx=mx.cpu())
    return net


def batches(count=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(nd.array(rng.normal(size=(32, 5))), nd.array(rng.integers(0, 3, 32),
                                                           dtype='float32'))
            for _ in range(count)]


def test_train_ch5_runs_its_steps_and_test_pass_on_the_count_the_load_calls_for(monkeypatch):
    """Beside a busy machine from its first check on: the same numbers as a
    training on the calling thread, the announcement among its lines, and
    every step and test batch after the switch on the one-thread team."""
    monkeypatch.setattr(_threads, 'CHOICE', _threads.ThreadChoice(
        threads=2, usable=2, others=0.0, env={}, user_set=(), engine=_threads.CPU_ENGINE))
    monkeypatch.setattr(_threads, 'usable_cores', lambda: 2)
    monkeypatch.setattr(lf, 'CHECK_SECONDS', 0.0)
    monkeypatch.setattr(lf, 'OthersLoad', lambda: lambda: 1.3)
    train, test = batches(), batches(2, seed=1)

    def run(follow):
        monkeypatch.setattr(lf, 'can_follow', lambda ctxs: follow)
        monkeypatch.setattr('d2lnets.training.loop.can_follow', lambda ctxs: follow)
        net, lines, threads = dense_net(), [], []
        original = net.forward

        def forward(x):
            threads.append(threading.get_ident())
            return original(x)
        net.forward = forward
        trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
        history = train_ch5(net, train, test, 32, trainer, mx.cpu(), 2, log=lines.append,
                            hybridize=False)
        return history, lines, threads

    followed, lines, threads = run(True)
    alone, alone_lines, alone_threads = run(False)
    for a, b in zip(followed.epochs, alone.epochs, strict=True):
        assert a['loss'] == pytest.approx(b['loss'], rel=1e-5)
        assert (a['train_acc'], a['test_acc']) == (b['train_acc'], b['test_acc'])
    assert [line for line in lines if line.startswith('threads:')] == [lf.announcement(1, 1.3, 2)]
    assert set(alone_threads) == {threading.get_ident()}
    assert threads[0] == threading.get_ident()  # before two checks agreed
    assert len(set(threads[1:])) == 1 and threads[1] != threading.get_ident()
    assert len(threads) == 2 * (6 + 2)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    return {**env, **extra}


def python(code, **extra):
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=clean_env(**extra),
                          capture_output=True, text=True, timeout=120)


ON_THE_CALLING_THREAD = (
    'import time, d2lnets, mxnet as mx\n'
    'a = mx.nd.ones((600, 600))\n'
    'mine, ours = time.thread_time(), time.process_time()\n'
    'for _ in range(40):\n'
    '    b = mx.nd.dot(a, a)\n'
    'b.wait_to_read()\n'
    'print((time.thread_time() - mine) / (time.process_time() - ours))\n')


@pytest.mark.skipif(_threads.mxnet_wheels() != ['mxnet'], reason="MXNet's CPU wheel")
def test_on_the_cpu_wheel_operators_run_on_the_calling_thread_and_stderr_stays_clean():
    """NaiveEngine: the main thread does a good share of the work (with
    MXNet's threaded engine an engine thread does it all, and the main
    thread's share is near 0), and MXNet's log line about the engine is kept
    off stderr."""
    naive = python(ON_THE_CALLING_THREAD, OMP_NUM_THREADS='1')
    assert naive.stderr == ''
    assert float(naive.stdout) > 0.5
    threaded = python(ON_THE_CALLING_THREAD, OMP_NUM_THREADS='1',
                      MXNET_ENGINE_TYPE='ThreadedEnginePerDevice')
    assert float(threaded.stdout) < 0.2
    assert 'MXNet start using engine: ThreadedEnginePerDevice' in threaded.stderr  # the user's


@pytest.mark.parametrize('env, wheels, expected', [
    ({}, ['mxnet'], 'NaiveEngine'),
    ({'MXNET_ENGINE_TYPE': 'ThreadedEngine'}, ['mxnet'], None),  # the user's choice
    ({'DMLC_ROLE': 'worker'}, ['mxnet'], None),  # the parameter server
    ({'HOROVOD_LOCAL_SIZE': '2'}, ['mxnet'], None),
    ({}, ['mxnet-cu112'], None),  # a GPU wheel: GPU streams need the threaded engine
    ({}, ['mxnet', 'mxnet-cu112'], None),
    ({}, [], None),  # built from source: unknown
])
def test_the_engine_for_each_case(env, wheels, expected, monkeypatch):
    for name in ('HOROVOD_LOCAL_SIZE', 'OMPI_COMM_WORLD_LOCAL_SIZE'):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _threads.choose_engine(env, wheels) == expected


def test_the_wheels_are_named_from_their_dist_info_folders(tmp_path, monkeypatch):
    (tmp_path / 'mxnet').mkdir()
    (tmp_path / 'mxnet_cu112-1.9.1.dist-info').mkdir()
    (tmp_path / 'mxnetx').mkdir()

    class Spec:
        submodule_search_locations = [str(tmp_path / 'mxnet')]
    monkeypatch.setattr(_threads.importlib.util, 'find_spec', lambda name: Spec)
    assert _threads.mxnet_wheels() == ['mxnet-cu112']
    (tmp_path / 'mxnet-1.9.1.dist-info').mkdir()
    assert _threads.mxnet_wheels() == ['mxnet', 'mxnet-cu112']
    monkeypatch.setattr(_threads.importlib.util, 'find_spec', lambda name: None)
    assert _threads.mxnet_wheels() == []


def test_programs_it_starts_choose_their_engine_for_themselves():
    """MXNET_ENGINE_TYPE leaves the environment once MXNet has read it, so a
    parameter-server worker started from a d2lnets process does not
    inherit the NaiveEngine, and a chapter started from one keeps stderr
    clean."""
    code = ('import os, subprocess, sys, d2lnets\n'
            'print(os.environ.get("MXNET_ENGINE_TYPE"))\n'
            'child = "import d2lnets, mxnet; mxnet.nd.ones(1).asnumpy()"\n'
            'done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)\n'
            'print(repr(done.stderr))\n')
    assert python(code).stdout.split() == ['None', "''"]


def test_the_start_line_says_the_count_follows_the_load():
    line = python('import d2lnets._threads as t; print(t.describe_choice())').stdout
    assert 'MXNET_ENGINE_TYPE=NaiveEngine' in line
    assert 'the count follows the load while training' in line
    line = python('import d2lnets._threads as t; print(t.describe_choice())',
                  OMP_NUM_THREADS='1').stdout
    assert 'follows' not in line
