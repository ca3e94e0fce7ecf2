"""A training's thread count follows the machine's load: batches run on the
caller's context while the start-up count fits, and on the context whose
engine worker runs the count the load calls for once two checks in a row
agree; the network moves with them, bit for bit, and is back on the
caller's context at every epoch's end."""
import ctypes
import os
import subprocess
import sys
import threading
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, init, nd
from mxnet.base import _LIB, check_call
from mxnet.gluon import nn

from d2lnets import _threads
from d2lnets.training import load_follower as lf
from d2lnets.training import thread_places
from d2lnets.training.loop import train_ch5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOMP = ctypes.CDLL('libgomp.so.1')  # the OpenMP runtime libmxnet.so links


def worker_threads(ctx):
    """The OpenMP thread count of the engine worker that runs `ctx`'s operators."""
    seen = []

    @thread_places._SYNC_FUNC
    def read(run_context, param):
        seen.append(GOMP.omp_get_max_threads())
    marker = nd.zeros((1,), ctx=ctx)
    handles = (ctypes.c_void_p * 1)(marker.handle)
    check_call(_LIB.MXEnginePushSyncND(
        read, None, None, ctypes.byref(thread_places._Context(1, ctx.device_id)), None, 0,
        handles, 1, None, 0, None))
    marker.wait_to_read()
    return seen[0]


def dense_net(seed=0):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    net.add(nn.Dense(16, activation='relu'), nn.Dense(3))
    net.initialize(init.Xavier(), ctx=mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def where(net):
    """The contexts the network's parameters are on (all alike)."""
    placed = {tuple(p.list_ctx()) for p in net.collect_params().values()}
    assert len(placed) == 1
    return list(placed.pop())


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def choice(**changes):
    values = dict(threads=2, usable=2, others=0.1, env={}, user_set=())
    return _threads.ThreadChoice(**{**values, **changes})


@pytest.fixture
def follower_of(monkeypatch):
    """A follower that started on `home` threads of `usable` cores, with a
    fake clock that is past the next check at every call and a fake load
    read from a list."""
    def make(home, usable, loads):
        monkeypatch.setattr(_threads, 'CHOICE', choice(threads=home, usable=usable))
        readings, lines, clock = iter(loads), [], Clock()

        def measure():
            clock.now += lf.CHECK_SECONDS
            return next(readings)
        net = dense_net()
        follower = lf.LoadFollower(net, [mx.cpu()], True, log=lines.append,
                                   measure=measure, clock=clock)
        clock.now = lf.CHECK_SECONDS
        return follower, lines
    return make


def test_batches_move_to_a_one_thread_place_when_the_load_stays_and_back_when_it_ends(
        follower_of):
    follower, lines = follower_of(home=2, usable=2, loads=[1.0, 1.2, 1.1, 0.0, 0.1, 0.0])
    seen = []
    for _ in range(6):
        seen.append(follower.contexts())
        assert where(follower.net) == seen[-1]
    one = mx.cpu(thread_places.PLACE_BASE + 1)
    assert seen == [[mx.cpu()]] + [[one]] * 3 + [[mx.cpu()]] * 2  # two checks must agree
    assert worker_threads(one) == 1
    assert lines == [
        'threads: other programs now use 1.2 of the 2 cores: training on 1 thread from here '
        '(set OMP_NUM_THREADS before starting Python to keep one count)',
        'threads: the other programs have stopped (they use 0.1 cores): training on 2 threads '
        'from here (set OMP_NUM_THREADS before starting Python to keep one count)']


def test_a_spike_between_quiet_checks_changes_nothing(follower_of):
    follower, lines = follower_of(home=2, usable=2, loads=[0.0, 1.5, 0.2, 1.5, 0.0])
    assert [follower.contexts() for _ in range(5)] == [[mx.cpu()]] * 5 and lines == []


def test_a_quiet_machine_gives_a_busy_start_every_core(follower_of):
    """Started beside other work on one thread; they ended: all four cores,
    on a place whose worker is set to four (not the start-up count)."""
    follower, lines = follower_of(home=1, usable=4, loads=[0.0, 0.0, 0.3])
    seen = [follower.contexts() for _ in range(3)]
    four = mx.cpu(thread_places.PLACE_BASE + 4)
    assert seen == [[mx.cpu()], [four], [four]] and worker_threads(four) == 4
    assert lines[0].startswith('threads: the other programs have stopped (they use 0.0 cores): '
                               'training on 4 threads from here')


def test_the_free_cores_of_a_partly_busy_machine(follower_of):
    follower, lines = follower_of(home=8, usable=8, loads=[2.5, 2.5])
    five = mx.cpu(thread_places.PLACE_BASE + 5)  # floor(8 - 2.5)
    assert [follower.contexts() for _ in range(2)] == [[mx.cpu()], [five]]
    assert worker_threads(five) == 5
    assert lines[0].startswith('threads: other programs now use 2.5 of the 8 cores: training '
                               'on 5 threads from here')


def test_an_unreadable_load_changes_nothing(follower_of):
    follower, lines = follower_of(home=2, usable=2, loads=[None, None, None])
    assert [follower.contexts() for _ in range(3)] == [[mx.cpu()]] * 3 and lines == []


def test_the_load_is_measured_every_second_not_every_batch(monkeypatch):
    monkeypatch.setattr(_threads, 'CHOICE', choice())
    clock, calls = Clock(), []
    net = dense_net()
    follower = lf.LoadFollower(net, [mx.cpu()], True,
                               measure=lambda: calls.append(clock.now) or 0.0, clock=clock)
    for clock.now in np.arange(0, 2.5 * lf.CHECK_SECONDS, lf.CHECK_SECONDS / 4):
        follower.contexts()
    assert calls == [lf.CHECK_SECONDS, 2 * lf.CHECK_SECONDS]


def test_disabled_it_never_measures_and_keeps_every_context_given(monkeypatch):
    monkeypatch.setattr(_threads, 'CHOICE', None)  # MXNet was loaded before d2lnets
    net = dense_net()
    ctxs = [mx.cpu(0), mx.cpu(1)]
    follower = lf.LoadFollower(net, ctxs, False, measure=lambda: pytest.fail('measured'),
                               clock=lambda: 1e9)
    assert follower.contexts() == ctxs and where(net) == [mx.cpu(0)]


def test_it_follows_only_a_count_d2lnets_chose_for_one_cpu_and_the_default_engine(monkeypatch):
    for name in ('MXNET_ENGINE_TYPE', 'MXNET_CPU_WORKER_NTHREADS', 'DMLC_ROLE'):
        monkeypatch.delenv(name, raising=False)
    cpu = [mx.cpu()]
    for chosen, ctxs, hybridized, expected in [
            (choice(), cpu, True, True),
            (choice(), [mx.cpu(3)], True, True),
            (choice(), cpu, False, False),  # train_ch5 does not hybridize it
            (choice(), [mx.cpu(0), mx.cpu(1)], True, False),  # data-parallel
            (choice(), [mx.gpu(0)], True, False),
            (choice(user_set=('OMP_NUM_THREADS',)), cpu, True, False),
            (choice(others=None), cpu, True, False),  # the load could not be measured
            (choice(usable=1, threads=1), cpu, True, False),  # nothing to choose from
            (None, cpu, True, False)]:  # MXNet was loaded before d2lnets
        monkeypatch.setattr(_threads, 'CHOICE', chosen)
        assert lf.can_follow(ctxs, hybridized) is expected, (chosen, ctxs, hybridized)
    monkeypatch.setattr(_threads, 'CHOICE', choice())
    for name, value, expected in [('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice', True),
                                  ('MXNET_ENGINE_TYPE', 'NaiveEngine', False),
                                  ('MXNET_ENGINE_TYPE', 'ThreadedEngine', False),
                                  ('MXNET_CPU_WORKER_NTHREADS', '1', True),
                                  ('MXNET_CPU_WORKER_NTHREADS', '2', False),
                                  ('DMLC_ROLE', 'worker', False)]:
        with monkeypatch.context() as env:
            env.setenv(name, value)
            assert lf.can_follow(cpu, True) is expected, (name, value)


def test_a_place_runs_its_count_and_keeps_it_after_a_fork():
    """MXNet restarts its workers at a fork, at OMP_NUM_THREADS; the place is
    set again before it runs anything."""
    three = thread_places.place(3)
    assert three == mx.cpu(thread_places.PLACE_BASE + 3) and worker_threads(three) == 3
    assert worker_threads(mx.cpu()) == int(os.environ['OMP_NUM_THREADS'])
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
    assert worker_threads(three) == 3
    with pytest.raises(ValueError, match='at least 1 thread, not 0'):
        thread_places.place(0)


def test_a_move_in_mid_training_with_momentum_gives_the_same_weights(monkeypatch):
    """Two steps with momentum at home, two on the one-thread place, against
    four at home: the same weights, bit for bit (the momentum stays home
    and the place's worker reads it), and back home."""
    monkeypatch.setattr(_threads, 'CHOICE', choice())
    X = nd.array(np.random.default_rng(0).normal(size=(32, 5)))
    y = nd.array(np.arange(32) % 3)
    loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def train(moves):
        net = dense_net()
        trainer = gluon.Trainer(net.collect_params(), 'sgd',
                                {'learning_rate': 0.1, 'momentum': 0.9})
        follower = lf.LoadFollower(net, [mx.cpu()], True, measure=lambda: None)
        for step in range(4):
            if moves and step == 2:
                follower._move_to([thread_places.place(1)])
            ctx = where(net)[0]
            with autograd.record():
                batch_loss = loss(net(X.as_in_context(ctx)), y.as_in_context(ctx))
            batch_loss.backward()
            trainer.step(32)
        placed = where(net)
        follower.go_home()
        return placed, [p.data().asnumpy() for p in net.collect_params().values()]
    (moved_to, moved), (stayed_at, stayed) = train(True), train(False)
    assert moved_to == [mx.cpu(thread_places.PLACE_BASE + 1)] and stayed_at == [mx.cpu()]
    assert len(moved) == len(stayed) == 4
    for a, b in zip(moved, stayed, strict=True):
        np.testing.assert_array_equal(a, b)


def batches(count=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(nd.array(rng.normal(size=(32, 5))), nd.array(rng.integers(0, 3, 32),
                                                           dtype='float32'))
            for _ in range(count)]


class Recorded(nn.HybridBlock):
    """A dense network that records the context of every batch it is given."""

    def __init__(self, seen):
        super().__init__()
        self.seen = seen
        with self.name_scope():
            self.body = dense_net()

    def forward(self, x):
        self.seen.append(x.context)
        return self.body(x)


def test_train_ch5_runs_its_batches_where_the_load_calls_for_and_ends_each_epoch_at_home(
        monkeypatch):
    """Beside a busy machine from its first check on: the numbers of a
    training that stays home, the announcement once, every batch after the
    switch on the one-thread place, and the network at home whenever an
    epoch ends and when the training is interrupted."""
    monkeypatch.setattr(_threads, 'CHOICE', choice())
    monkeypatch.setattr(lf, 'CHECK_SECONDS', 0.0)
    monkeypatch.setattr(lf, 'OthersLoad', lambda: lambda: 1.3)
    train, test = batches(), batches(2, seed=1)
    one = mx.cpu(thread_places.PLACE_BASE + 1)

    nets = []

    def run(follow, data=train):
        monkeypatch.setattr('d2lnets.training.loop.can_follow', lambda ctxs, hybridized: follow)
        seen, lines, at_epoch_end = [], [], []
        net = Recorded(seen)
        nets.append(net)
        trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
        history = train_ch5(net, data, test, 32, trainer, mx.cpu(), 2, log=lines.append,
                            on_epoch=lambda h: at_epoch_end.append(where(net)))
        return history, lines, seen, at_epoch_end

    followed, lines, seen, at_epoch_end = run(True)
    alone, _, alone_seen, _ = run(False)
    for a, b in zip(followed.epochs, alone.epochs, strict=True):
        assert a['loss'] == pytest.approx(b['loss'], rel=1e-5)
        assert (a['train_acc'], a['test_acc']) == (b['train_acc'], b['test_acc'])
    assert [line for line in lines if line.startswith('threads:')] == [lf.announcement(1, 1.3, 2)]
    assert set(alone_seen) == {mx.cpu()}
    assert seen[0] == mx.cpu() and set(seen[1:]) == {one}  # home until two checks agreed
    assert len(seen) == 2 * (6 + 2) and at_epoch_end == [[mx.cpu()]] * 2
    assert where(nets[0]) == [mx.cpu()]

    def interrupted():
        yield from train[:3]
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run(True, data=interrupted())
    assert nets[-1].seen[-1] == one and where(nets[-1]) == [mx.cpu()]


def test_the_start_line_says_when_the_count_follows_the_load():
    env = {k: v for k, v in os.environ.items() if k not in _threads.THREAD_VARIABLES}
    code = 'import d2lnets._threads as t; print(t.describe_choice())'
    line = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120).stdout
    assert line.rstrip().endswith('; the count follows the load while training); to choose '
                                  'yourself, set OMP_NUM_THREADS and OMP_WAIT_POLICY before '
                                  'starting Python')
    line = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                          env={**env, 'OMP_NUM_THREADS': '1'}, capture_output=True, text=True,
                          timeout=120).stdout
    assert 'follows' not in line


def test_the_load_is_other_programs_time_less_this_processs_and_its_childrens(monkeypatch):
    samples = iter([(10.0, 100.0, 4.0), (12.0, 104.0, 5.5), (12.0, 105.0, 5.5), None,
                    (14.0, 110.0, 7.0), (18.0, 114.2, 11.0)])
    monkeypatch.setattr(lf.OthersLoad, '_sample', lambda self: next(samples))
    load = lf.OthersLoad()
    assert load() == pytest.approx((4.0 - 1.5) / 2.0)
    assert load() is None  # no time passed
    assert load() is None  # /proc/stat could not be read
    assert load() is None  # nor the time before
    assert load() == pytest.approx(0.05)  # 0.2 s of others' time in 4 s


@pytest.mark.skipif(not os.path.exists('/proc/stat'), reason='Linux only')
def test_a_program_that_is_not_this_ones_child_is_load_and_a_child_is_not():
    """A spinning grandchild (not this process's child, so not its work)
    counts: at least half a core, whatever else the machine runs, and at
    most every core. A spinning child (a data loader's worker) does not:
    beside it, others can use at most what it leaves."""
    cores = len(_threads.usable_cpus())
    spin = f'{sys.executable} -c "while True: pass" & sleep 1.5; kill $!'
    load = lf.OthersLoad()
    subprocess.run(['sh', '-c', spin], timeout=30)
    assert 0.5 <= load() <= cores + 0.1
    child = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    ticks = os.sysconf('SC_CLK_TCK')
    try:
        load()
        start, child_start = time.monotonic(), lf.children_cpu_seconds(ticks)
        threading.Event().wait(1.5)
        others = load()
        child_share = (lf.children_cpu_seconds(ticks) - child_start) / (time.monotonic() - start)
        assert child_share > 0.3 and others <= cores - child_share + 0.2
    finally:
        child.kill()
        child.wait()


def test_children_cpu_time_is_read_from_proc(tmp_path):
    """Children listed by threads of this process: a listing that cannot be
    read (the first thread's), a child that ended before its stat was read
    (listed first), a command name with a ')' in it."""
    (tmp_path / 'self' / 'task' / '099' / 'children').mkdir(parents=True)  # not a file
    for tid, pids in (('100', '8 7'), ('101', '9')):
        (tmp_path / 'self' / 'task' / tid).mkdir(parents=True)
        (tmp_path / 'self' / 'task' / tid / 'children').write_text(pids + ' ')
    for pid, name, utime, stime in (('7', 'python', 30, 5), ('9', 'a) b', 100, 7)):
        (tmp_path / pid).mkdir()
        fields = ['S', '1'] + ['0'] * 9 + [str(utime), str(stime)] + ['0'] * 30
        (tmp_path / pid / 'stat').write_text(f'{pid} ({name}) ' + ' '.join(fields))
    assert lf.children_cpu_seconds(100, proc=str(tmp_path)) == pytest.approx(1.42)


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


def test_a_move_drops_the_cached_graph_so_one_context_holds_its_memory(follower_of):
    """With static memory each context the cached graph ran on keeps its
    buffers; hybridizing again drops the graph (MXNet's `_cached_op`)."""
    follower, _ = follower_of(home=2, usable=2, loads=[1.0, 1.0, 1.0, 1.0])
    net = follower.net
    net(nd.ones((4, 5)))
    assert net._cached_op is not None
    follower.contexts()
    assert net._cached_op is not None  # still home: nothing dropped
    follower.contexts()
    assert net._cached_op is None
    assert dict(net._flags)['static_alloc'] and dict(net._flags)['static_shape']
    net(nd.ones((4, 5)).as_in_context(follower.contexts()[0]))
    follower.contexts()  # the same place again: nothing moves, nothing is dropped
    assert net._cached_op is not None


def test_a_place_is_set_once_not_at_every_batch(monkeypatch):
    """Setting a count waits for the engine: a training asks for its place at
    every batch, so only a count not yet set (or lost at a fork) is pushed."""
    pushed = []
    monkeypatch.setattr(thread_places, '_push_threads', lambda ctx, n: pushed.append((ctx, n)))
    monkeypatch.setattr(thread_places, '_placed', {})
    for _ in range(3):
        thread_places.place(2)
    thread_places.place(1)
    assert pushed == [(mx.cpu(thread_places.PLACE_BASE + 2), 2),
                      (mx.cpu(thread_places.PLACE_BASE + 1), 1)]
