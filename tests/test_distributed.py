"""Sharding and the checks that keep a distributed run from starting wrong."""
import importlib.util

import numpy as np
import pytest

from d2lnets.data.batches import load_data_fashion_mnist
from d2lnets.data.batches import shard_indices
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
