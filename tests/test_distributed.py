"""Sharding and the checks that keep a distributed run from starting wrong."""
import importlib.util
import sys

import numpy as np
import pytest
from mxnet.gluon import nn

from d2lnets.data.batches import load_data_fashion_mnist
from d2lnets.data.batches import shard_indices
from d2lnets.training import distributed
from d2lnets.training.distributed import DistributedError, check_kvstore
from chapters import lenet


def test_shards_are_equal_disjoint_and_cover_all_but_the_remainder():
    parts = [shard_indices(10, 3, i) for i in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    joined = np.concatenate(parts)
    assert len(set(joined)) == 9 and set(joined) <= set(range(10))


@pytest.mark.parametrize('num, parts, index, message', [
    (10, 2, 2, 'part 2 of 2 does not exist'),
    (1, 2, 0, '1 examples cannot be shared by 2 workers'),
])
def test_bad_shards_are_refused(num, parts, index, message):
    with pytest.raises(ValueError, match=message):
        shard_indices(num, parts, index)


def test_training_shards_split_the_subset_and_leave_the_test_set_whole():
    shards = [load_data_fashion_mnist(50, num_train=1000, num_test=200, num_parts=2,
                                      part_index=i) for i in range(2)]
    whole, _ = load_data_fashion_mnist(50, num_train=1000, num_test=200)
    assert [train.num_examples for train, _ in shards] == [500, 500]
    assert all(test.num_examples == 200 for _, test in shards)
    together = np.concatenate([train.images for train, _ in shards])
    assert sorted(map(bytes, together)) == sorted(map(bytes, whole.images))


def test_dist_kvstore_without_a_launcher_is_refused(monkeypatch):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    with pytest.raises(DistributedError, match='run it under python -m d2lnets.training.launch'):
        check_kvstore('dist_sync')
    check_kvstore('device')


def test_a_launched_worker_needs_a_dist_kvstore(monkeypatch):
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    with pytest.raises(DistributedError, match='add --kvstore dist_sync'):
        check_kvstore(None)


def test_chapter_refuses_dist_kvstore_without_launcher(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    with pytest.raises(SystemExit) as info:
        lenet.main(['--kvstore', 'dist_sync', '--out', str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'python -m d2lnets.training.launch' in err


def test_batch_must_split_evenly_among_workers(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    monkeypatch.setenv('DMLC_NUM_WORKER', '3')
    with pytest.raises(SystemExit):
        lenet.main(['--kvstore', 'dist_sync', '--batch-size', '256', '--out', str(tmp_path)])
    assert '--batch-size 256 does not split evenly among 3 workers' in capsys.readouterr().err


def test_horovod_and_kvstore_exclude_each_other(capsys, tmp_path):
    with pytest.raises(SystemExit):
        lenet.main(['--horovod', '--kvstore', 'dist_sync', '--out', str(tmp_path)])
    assert '--horovod and --kvstore exclude each other' in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec('horovod') is not None, reason='Horovod is installed')
def test_horovod_missing_is_one_line_with_the_install_command(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        lenet.main(['--horovod', '--out', str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'HOROVOD_WITH_MXNET=1 pip install --no-build-isolation horovod==0.28.1' in err


# The rest of the module, in the test's process (what mutmut can map): the
# checks' exact words, the worker counts, and what `join` gives each kind of job.

def test_is_distributed_means_a_dist_kvstore():
    assert [distributed.is_distributed(k) for k in (None, 'device', 'local', 'dist_sync',
                                                     'dist_async')] == [False, False, False,
                                                                        True, True]


def test_kvstores_that_cannot_start_are_refused_in_their_own_words(monkeypatch):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    messages = {}
    for kvstore in ('nccl', 'dist_async'):
        with pytest.raises(DistributedError) as info:
            check_kvstore(kvstore)
        messages[kvstore] = str(info.value)
    assert messages == {
        'nccl': '--kvstore nccl: use one of device, local, dist_sync, dist_async',
        'dist_async': '--kvstore dist_async needs a scheduler and servers: run it under '
                      'python -m d2lnets.training.launch -n 2 -- <this command>'}
    for kvstore in (None, 'device', 'local'):
        check_kvstore(kvstore)
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    for kvstore in ('dist_sync', 'dist_async'):
        check_kvstore(kvstore)
    with pytest.raises(DistributedError) as info:
        check_kvstore('local')
    assert str(info.value) == ('started by a launcher (DMLC_ROLE=worker) but --kvstore is not '
                               'dist_sync or dist_async: add --kvstore dist_sync')
    monkeypatch.setenv('DMLC_ROLE', 'server')
    check_kvstore(None)


@pytest.mark.parametrize('horovod, env, workers', [
    (True, {'HOROVOD_SIZE': '4', 'OMPI_COMM_WORLD_SIZE': '3', 'DMLC_NUM_WORKER': '5'}, 4),
    (True, {'OMPI_COMM_WORLD_SIZE': '3', 'DMLC_ROLE': 'worker', 'DMLC_NUM_WORKER': '5'}, 3),
    (True, {'DMLC_ROLE': 'worker', 'DMLC_NUM_WORKER': '5'}, 1),
    (False, {'HOROVOD_SIZE': '4', 'DMLC_ROLE': 'worker', 'DMLC_NUM_WORKER': '5'}, 5),
    (False, {'DMLC_ROLE': 'worker'}, 1),
    (False, {'DMLC_NUM_WORKER': '5', 'HOROVOD_SIZE': '4'}, 1),
])
def test_planned_workers_reads_the_launchers_count(monkeypatch, horovod, env, workers):
    for name in ('HOROVOD_SIZE', 'OMPI_COMM_WORLD_SIZE', 'DMLC_ROLE', 'DMLC_NUM_WORKER'):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # without Horovod, as the chapters ask when --horovod is not given
    assert (distributed.planned_workers(True) if horovod else
            distributed.planned_workers()) == workers


def dense():
    net = nn.Dense(2, in_units=3)
    net.initialize()
    return net


def test_alone_a_process_is_rank_0_of_1_and_its_trainer_uses_the_kvstore_asked(monkeypatch):
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    hook = sys.excepthook
    for kvstore, kind in ((None, 'device'), ('device', 'device'), ('local', 'local')):
        job = distributed.join(kvstore)
        assert (job.rank, job.workers, job.kind, job.trainer_states) == (0, 1, kind, True)
        assert job.step_batch(256) == 256
        trainer = job.trainer(dense().collect_params(), 'sgd', {'learning_rate': 0.3})
        assert trainer.learning_rate == 0.3
        store = trainer._kvstore_params['kvstore']  # the name, or the kvstore made
        assert (store if kvstore is None else store.type) == kind
    assert distributed.join().kind == 'device'
    assert sys.excepthook is hook


class Exited(Exception):
    pass


class FakeStore:
    rank, num_workers, type = 1, 3, 'dist_sync'


def test_a_launched_worker_joins_the_dist_kvstore_and_fails_fast(monkeypatch):
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    made = []
    monkeypatch.setattr(distributed.mx.kv, 'create',
                        lambda kind: made.append(kind) or FakeStore())
    printed, exits = [], []
    monkeypatch.setattr(sys, 'excepthook', lambda *exc_info: printed.append(exc_info))

    def leave(code):
        exits.append(code)
        raise Exited

    monkeypatch.setattr(distributed.os, '_exit', leave)
    job = distributed.join('dist_sync')
    assert made == ['dist_sync']
    assert (job.rank, job.workers, job.kind, job.trainer_states) == (1, 3, 'dist_sync', False)
    assert job.step_batch(256) == 256  # each worker's gradients are summed by the servers
    error = ValueError('boom')
    with pytest.raises(Exited):
        sys.excepthook(ValueError, error, None)  # now prints, then leaves at once
    assert printed == [(ValueError, error, None)] and exits == [1]
    trainer = job.trainer(dense().collect_params(), 'sgd', {'learning_rate': 0.3})
    assert isinstance(trainer._kvstore_params['kvstore'], FakeStore)


def test_a_horovod_job_broadcasts_the_parameters_and_averages_its_gradients(monkeypatch):
    calls = []

    class FakeHorovod:
        def init(self):
            calls.append('init')

        def rank(self):
            return 1

        def size(self):
            return 4

        def broadcast_parameters(self, params, root_rank):
            calls.append(('broadcast', params, root_rank))

        def DistributedTrainer(self, params, optimizer, optimizer_params):
            calls.append(('trainer', params, optimizer, optimizer_params))
            return 'trainer'

    monkeypatch.setattr(distributed, 'import_horovod', FakeHorovod)
    job = distributed.join('dist_sync', horovod=True)
    assert (job.rank, job.workers, job.kind, job.trainer_states) == (1, 4, 'horovod', True)
    assert repr(job.step_batch(256)) == '64'  # a whole number: history.json records it
    assert job.trainer('params', 'adam', {'learning_rate': 0.1}) == 'trainer'
    assert calls == ['init', ('broadcast', 'params', 0),
                     ('trainer', 'params', 'adam', {'learning_rate': 0.1})]


@pytest.mark.skipif(importlib.util.find_spec('horovod') is not None, reason='Horovod is installed')
def test_without_horovod_the_error_names_the_import_error_and_the_install():
    with pytest.raises(DistributedError) as info:
        distributed.import_horovod()
    assert str(info.value) == (
        "--horovod needs Horovod built for MXNet (No module named 'horovod'): "
        'HOROVOD_WITH_MXNET=1 pip install --no-build-isolation horovod==0.28.1 '
        '(after pip install -U "setuptools<75"; it compiles for some minutes)')


def test_an_uncaught_exception_is_printed_then_ends_the_process(monkeypatch, capsys):
    printed = []
    monkeypatch.setattr(sys, 'excepthook', lambda *exc_info: printed.append(exc_info))
    monkeypatch.delenv('DMLC_ROLE', raising=False)
    distributed.fail_fast()
    error = ValueError('boom')
    with pytest.raises(SystemExit) as info:
        sys.excepthook(ValueError, error, None)
    assert info.value.code == 1 and printed == [(ValueError, error, None)]


def test_exit_now_leaves_at_once_under_a_launcher(monkeypatch):
    exits = []

    def fake_exit(code):
        exits.append(code)
        raise Exited

    monkeypatch.setattr(distributed.os, '_exit', fake_exit)
    monkeypatch.setenv('DMLC_ROLE', 'worker')
    with pytest.raises(Exited):
        distributed.exit_now(3)
    monkeypatch.delenv('DMLC_ROLE')
    with pytest.raises(SystemExit) as info:
        distributed.exit_now(4)
    assert info.value.code == 4 and exits == [3]
