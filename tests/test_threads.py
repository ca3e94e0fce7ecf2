"""d2lnets gives MXNet every usable core, and spinning threads, unless told otherwise."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = 'import d2lnets, os; print(os.environ["OMP_NUM_THREADS"])'


def run_python(env_update, code):
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT',
                         'HOROVOD_LOCAL_SIZE')}
    env.update(env_update)
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)


def omp_threads_seen(env_update, code=PROBE):
    return run_python(env_update, code).stdout.strip()


def test_all_usable_cores_by_default():
    assert omp_threads_seen({}) == str(len(os.sched_getaffinity(0)))


def test_horovod_processes_on_one_machine_share_its_cores():
    cores = len(os.sched_getaffinity(0))
    assert omp_threads_seen({'HOROVOD_LOCAL_SIZE': '2'}) == str(max(1, cores // 2))


def test_the_users_setting_wins():
    assert omp_threads_seen({'OMP_NUM_THREADS': '1'}) == '1'


def test_nothing_changes_once_mxnet_is_loaded():
    code = 'import mxnet, d2lnets, os; print(os.environ.get("OMP_NUM_THREADS", "unset"))'
    assert omp_threads_seen({}, code) == 'unset'


def test_threads_spin_between_operators_unless_the_user_says_otherwise():
    code = 'import d2lnets, os; print(os.environ["OMP_WAIT_POLICY"])'
    assert omp_threads_seen({}, code) == 'ACTIVE'
    assert omp_threads_seen({'OMP_WAIT_POLICY': 'PASSIVE'}, code) == 'PASSIVE'


def test_spinning_threads_give_their_core_back_after_a_few_milliseconds():
    code = 'import d2lnets, os; print(os.environ["GOMP_SPINCOUNT"])'
    assert omp_threads_seen({}, code) == '300000'
    assert omp_threads_seen({'GOMP_SPINCOUNT': '0'}, code) == '0'


MANY_CORES = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason='needs 2 usable cores')


@MANY_CORES
def test_importing_mxnet_first_warns_once_with_the_fix():
    code = ('import mxnet, d2lnets, d2lnets._threads as t; t.tune_threads(); '
            'import importlib; importlib.reload(d2lnets)')
    err = run_python({}, code).stderr
    cores = len(os.sched_getaffinity(0))
    assert err.count('RuntimeWarning') == 1, err
    assert 'mxnet (or d2l) was imported before d2lnets' in err
    assert 'import d2lnets first' in err and f'OMP_NUM_THREADS={cores}' in err


@MANY_CORES
def test_no_warning_in_the_right_order_or_with_the_users_setting():
    assert run_python({}, 'import d2lnets, mxnet').stderr == ''
    assert run_python({'OMP_NUM_THREADS': '2'}, 'import mxnet, d2lnets').stderr == ''
