"""d2lnets chooses MXNet's threads from the machine's load before MXNet loads:
every usable core with spinning threads when the machine is quiet, the free
cores with sleeping threads when it is busy; values the user set win."""
import os
import subprocess
import sys
import time

import pytest

from d2lnets import _threads
from d2lnets._threads import BUSY_SETTINGS, QUIET_SETTINGS, choose

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'HOROVOD_LOCAL_SIZE')
PROBE = ('import d2lnets, os, d2lnets._threads as t; '
         'print(os.environ.get("OMP_NUM_THREADS"), os.environ.get("OMP_WAIT_POLICY"), '
         'os.environ.get("GOMP_SPINCOUNT")); print(t.describe_choice())')
CORES = len(os.sched_getaffinity(0))


def run_python(env_update, code=PROBE):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(env_update)
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)


def settings_seen(env_update):
    """(OMP_NUM_THREADS, OMP_WAIT_POLICY, GOMP_SPINCOUNT, the one-line choice)."""
    first, choice = run_python(env_update).stdout.strip().splitlines()
    return (*first.split(), choice)


@pytest.fixture
def spinners():
    """A busy machine: one CPU-bound process per usable core, for the test's length."""
    procs = [subprocess.Popen([sys.executable, '-c', 'while True: pass'])
             for _ in range(CORES)]
    time.sleep(0.5)
    yield
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize('usable, others, processes, expected', [
    (2, None, 1, (2, QUIET_SETTINGS)),   # load unknown: as quiet
    (2, 0.0, 1, (2, QUIET_SETTINGS)),
    (2, 0.4, 1, (2, QUIET_SETTINGS)),    # a browser, an editor
    (2, 0.5, 1, (1, BUSY_SETTINGS)),
    (2, 1.0, 1, (1, BUSY_SETTINGS)),
    (2, 3.0, 1, (1, BUSY_SETTINGS)),     # more load than cores: still one thread
    (16, 4.2, 1, (11, BUSY_SETTINGS)),   # the cores the others leave wholly free
    (16, 0.1, 2, (8, QUIET_SETTINGS)),   # two Horovod processes share the cores
    (1, 0.0, 1, (1, QUIET_SETTINGS)),
])
def test_the_choice_for_each_load(usable, others, processes, expected):
    assert choose(usable, others, processes) == expected


def test_the_load_is_other_programs_cpu_time_not_this_processs(monkeypatch):
    """3 s of CPU ticks on 2 CPUs in 1.5 s, of which 0.6 s were this process's own."""
    ticks = os.sysconf('SC_CLK_TCK')
    readings = iter([1000, 1000 + 3 * ticks])
    monkeypatch.setattr(_threads, '_busy_ticks', lambda cpus: next(readings))
    monkeypatch.setattr(_threads.time, 'process_time', iter([5.0, 5.6]).__next__)
    monkeypatch.setattr(_threads.time, 'monotonic', iter([10.0, 11.5, 11.5]).__next__)
    assert _threads.others_load({0, 1}) == pytest.approx((3 - 0.6) / 1.5)


STAT = """cpu  900 800 300 5000 40 0 10 0 0 0
cpu0 100 200 30 2000 10 0 5 0 0 0
cpu1 400 600 70 3000 30 0 5 7 0 0
intr 12345
"""


def test_busy_ticks_count_niced_time_and_leave_out_idle_and_iowait(tmp_path):
    """Columns: user nice system idle iowait irq softirq steal (guest ones left out).
    Niced programs are load: beside nice-19 spinners two threads trained at a
    tenth of one thread's speed (docs/results.md, "Niced neighbours")."""
    stat = tmp_path / 'stat'
    stat.write_text(STAT)
    cpu0, cpu1 = 100 + 200 + 30 + 5, 400 + 600 + 70 + 5 + 7
    assert _threads._busy_ticks({0, 1}, str(stat)) == cpu0 + cpu1
    assert _threads._busy_ticks({1}, str(stat)) == cpu1


def test_no_proc_stat_means_load_unknown(monkeypatch):
    def missing(cpus):
        raise FileNotFoundError('/proc/stat')
    monkeypatch.setattr(_threads, '_busy_ticks', missing)
    assert _threads.others_load({0}) is None


@pytest.mark.skipif(not os.path.exists('/proc/stat'), reason='Linux only')
def test_the_load_of_cpu_bound_neighbours_is_measured(spinners):
    assert _threads.others_load(_threads.usable_cpus(), seconds=0.3) > 0.6 * CORES


@pytest.mark.skipif(not os.path.exists('/proc/stat'), reason='Linux only')
def test_beside_busy_neighbours_one_thread_that_sleeps_when_idle(spinners):
    threads, policy, spin, choice = settings_seen({})
    assert (threads, policy, spin) == ('1', 'PASSIVE', 'None')
    assert choice.startswith('threads: OMP_NUM_THREADS=1, OMP_WAIT_POLICY=PASSIVE (1 of ')
    assert 'other programs used' in choice and 'set OMP_NUM_THREADS' in choice


@pytest.mark.skipif(CORES < 2 or not os.path.exists('/proc/stat'), reason='Linux, 2 cores')
def test_trainings_started_together_see_each_other():
    """Each keeps a core busy while it measures, so neither sees a quiet machine."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    procs = [subprocess.Popen([sys.executable, '-c', PROBE], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE) for _ in range(2)]
    for proc in procs:
        threads, policy, _ = proc.communicate(timeout=120)[0].splitlines()[0].split()
        assert int(threads) < CORES and policy == 'PASSIVE'


def test_the_users_settings_win_and_are_named():
    threads, policy, spin, choice = settings_seen(
        {'OMP_NUM_THREADS': '3', 'OMP_WAIT_POLICY': 'ACTIVE', 'GOMP_SPINCOUNT': '0'})
    assert (threads, policy, spin) == ('3', 'ACTIVE', '0')
    assert 'OMP_NUM_THREADS=3 was set before d2lnets started' in choice


def test_no_load_is_measured_when_the_user_chose_everything():
    code = 'import d2lnets._threads as t; print(t.CHOICE.others)'
    env = {'OMP_NUM_THREADS': '1', 'OMP_WAIT_POLICY': 'PASSIVE', 'GOMP_SPINCOUNT': '0'}
    assert run_python(env, code).stdout.strip() == 'None'


def test_horovod_processes_on_one_machine_share_its_cores_unmeasured():
    threads, policy, _, _ = settings_seen({'HOROVOD_LOCAL_SIZE': '2'})
    assert (threads, policy) == (str(max(1, CORES // 2)), 'ACTIVE')


def test_nothing_changes_once_mxnet_is_loaded():
    code = ('import mxnet, d2lnets, os, d2lnets._threads as t; '
            'print(os.environ.get("OMP_NUM_THREADS", "unset")); print(t.describe_choice())')
    unset, choice = run_python({}, code).stdout.strip().splitlines()
    assert unset == 'unset'
    assert 'MXNet was loaded before d2lnets, which could not choose' in choice


MANY_CORES = pytest.mark.skipif(CORES < 2, reason='needs 2 usable cores')


@MANY_CORES
def test_importing_mxnet_first_warns_once_with_the_fix():
    code = ('import mxnet, d2lnets, d2lnets._threads as t; t.tune_threads(); '
            'import importlib; importlib.reload(d2lnets)')
    err = run_python({}, code).stderr
    assert err.count('RuntimeWarning') == 1, err
    assert 'mxnet (or d2l) was imported before d2lnets' in err
    assert 'import d2lnets first' in err and f'OMP_NUM_THREADS={CORES}' in err


@MANY_CORES
def test_no_warning_in_the_right_order_or_with_the_users_setting():
    assert run_python({}, 'import d2lnets, mxnet').stderr == ''
    assert run_python({'OMP_NUM_THREADS': '2'}, 'import mxnet, d2lnets').stderr == ''
