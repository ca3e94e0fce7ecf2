"""d2lnets gives MXNet every usable core, and spinning threads, unless told otherwise."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = 'import d2lnets, os; print(os.environ["OMP_NUM_THREADS"])'


def omp_threads_seen(env_update, code=PROBE):
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'HOROVOD_LOCAL_SIZE')}
    env.update(env_update)
    return subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


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
