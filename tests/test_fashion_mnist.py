"""Where Fashion-MNIST is looked for, what is refused, and what is downloaded.

Generated stand-ins (with their own checksum table) test the search order and
the downloads from a web server on loopback; the real files test the real table.
"""
import os
import re
import shutil
import time
import warnings

import numpy as np
import pytest

from d2lnets.data import fashion_mnist as fm
from d2lnets.data.idx import payload_sha256, read_gzip_bytes, write_idx


def write_stand_in(directory, marker):
    """Four small IDX files whose first training label is `marker`."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(marker)
    arrays = {
        ('train', 'images'): rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        ('train', 'labels'): np.array([marker] + [i % 10 for i in range(19)], dtype=np.uint8),
        ('test', 'images'): rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        ('test', 'labels'): np.arange(10, dtype=np.uint8),
    }
    for key, (name, _) in fm.FILES.items():
        write_idx(os.path.join(directory, name), arrays[key])
    return directory


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty search places, and a checksum table that trusts marker 7's files."""
    trusted = write_stand_in(tmp_path / 'trusted', 7)
    table = {key: (name, payload_sha256(read_gzip_bytes(os.path.join(trusted, name))))
             for key, (name, _) in fm.FILES.items()}
    monkeypatch.setattr(fm, 'FILES', table)
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxnet-home'))
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setattr(fm, 'DEBIAN_DIR', str(tmp_path / 'debian'))
    cache = tmp_path / 'mxnet-home' / 'datasets' / 'fashion-mnist'
    return dict(trusted=trusted, cache=cache, debian=tmp_path / 'debian',
                env=tmp_path / 'env', root=tmp_path / 'root')


def first_label(arrays):
    return int(arrays['train'][1][0])


def test_search_order(places, monkeypatch):
    assert fm.search_dirs() == [str(places['cache']), str(places['debian'])]
    for name in ('root', 'env', 'cache', 'debian'):
        shutil.copytree(places['trusted'], places[name])
    monkeypatch.setenv(fm.ENV_VAR, str(places['env']))
    assert fm.search_dirs(str(places['root'])) == [str(places['root'])]
    assert fm.search_dirs() == [str(places['env']), str(places['cache']), str(places['debian'])]
    read = []
    real_read = fm._read_verified

    def spy(directory, stamp):
        read.append(directory)
        return real_read(directory, stamp)

    monkeypatch.setattr(fm, '_read_verified', spy)
    # Each place wins while its files pass; one whose file changed is skipped.
    for winner in ('env', 'cache', 'debian'):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            assert first_label(fm.load_arrays(download=False)) == 7
        assert read[-1] == str(places[winner])
        labels_file = places[winner] / fm.FILES[('train', 'labels')][0]
        write_idx(labels_file, np.full(20, 3, dtype=np.uint8))  # other data: bad checksum
    with pytest.warns(UserWarning, match='checksum mismatch'), \
            pytest.raises(fm.DataNotFoundError, match='checksum mismatch'):
        fm.load_arrays(download=False)


def test_explicit_root_comes_before_everything(places, monkeypatch):
    shutil.copytree(places['trusted'], places['root'])
    write_stand_in(places['env'], 2)
    monkeypatch.setenv(fm.ENV_VAR, str(places['env']))
    assert first_label(fm.load_arrays(root=str(places['root']), download=False)) == 7


def test_an_explicit_root_without_the_files_is_never_replaced_by_another_copy(places):
    shutil.copytree(places['trusted'], places['cache'])
    places['root'].mkdir()
    with pytest.raises(fm.DataNotFoundError, match=f'not found in {places["root"]} '):
        fm.load_arrays(root=str(places['root']), download=False)


def test_corrupt_file_is_skipped_with_a_warning(places):
    shutil.copytree(places['trusted'], places['cache'])
    shutil.copytree(places['trusted'], places['debian'])
    path = places['cache'] / fm.FILES[('test', 'images')][0]
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.warns(UserWarning, match='not a whole gzip file'):
        arrays = fm.load_arrays(download=False)
    assert arrays['test'][0].shape == (10, 28, 28)


def test_offline_with_nothing_found_says_where_and_how(places):
    with pytest.raises(fm.DataNotFoundError) as info:
        fm.load_arrays(mirrors=('http://127.0.0.1:9/',))
    message = str(info.value)
    assert '\n' not in message
    assert str(places['cache']) in message and str(places['debian']) in message
    assert 'apt-get install dataset-fashion-mnist' in message
    assert 'download into' in message


def test_download_tries_mirrors_until_one_serves_whole_files(places, mirror_server, tmp_path):
    bad = tmp_path / 'bad-mirror'
    shutil.copytree(places['trusted'], bad)
    for name, _ in fm.FILES.values():
        (bad / name).write_bytes((bad / name).read_bytes()[:-10])
    shutil.copytree(places['trusted'], tmp_path / 'good-mirror')
    mirrors = (mirror_server + 'missing/', mirror_server + 'bad-mirror/',
               mirror_server + 'good-mirror/')
    arrays = fm.load_arrays(mirrors=mirrors)
    assert first_label(arrays) == 7
    assert sorted(os.listdir(places['cache'])) == sorted(n for n, _ in fm.FILES.values())


def test_corrupt_cache_is_downloaded_again(places, mirror_server, tmp_path):
    shutil.copytree(places['trusted'], places['cache'])
    target = places['cache'] / fm.FILES[('train', 'images')][0]
    target.write_bytes(b'garbage')
    shutil.copytree(places['trusted'], tmp_path / 'good-mirror')
    with pytest.warns(UserWarning, match='skipping'):
        arrays = fm.load_arrays(mirrors=(mirror_server + 'good-mirror/',))
    assert arrays['train'][0].shape == (20, 28, 28)
    assert target.read_bytes() == (places['trusted'] / target.name).read_bytes()


def test_download_into_explicit_root(places, mirror_server, tmp_path):
    shutil.copytree(places['trusted'], tmp_path / 'good-mirror')
    fm.load_arrays(root=str(places['root']), mirrors=(mirror_server + 'good-mirror/',))
    assert len(os.listdir(places['root'])) == 4
    assert not places['cache'].exists()


def test_real_files_pass_the_real_checksums():
    arrays = fm.load_arrays(download=False)
    (train_x, train_y), (test_x, test_y) = arrays['train'], arrays['test']
    assert train_x.shape == (60000, 28, 28) and train_x.dtype == np.uint8
    assert test_x.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(train_y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test_y), [1000] * 10)
    assert fm.get_fashion_mnist_labels(train_y[:3]) == ['ankle boot', 't-shirt', 't-shirt']


def test_without_mxnet_home_the_cache_is_mxnets_own_default(tmp_path, monkeypatch):
    """~/.mxnet/datasets/<name>, where MXNet itself caches data sets."""
    import mxnet as mx

    from d2lnets.data.sources import mxnet_dataset_dir
    monkeypatch.delenv('MXNET_HOME', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    assert mxnet_dataset_dir('fashion-mnist') == str(tmp_path / '.mxnet' / 'datasets'
                                                     / 'fashion-mnist')
    assert fm.mxnet_cache_dir() == os.path.join(mx.base.data_dir(), 'datasets', 'fashion-mnist')


# Messages, warnings and downloads pinned down by mutation testing
# (docs/results.md, "Mutation testing").

def test_the_whole_message_when_nothing_is_found(places):
    """Every place searched, every problem, and the fix with the first mirror."""
    shutil.copytree(places['trusted'], places['debian'])
    labels = places['debian'] / fm.FILES[('test', 'labels')][0]
    write_idx(labels, np.zeros(10, dtype=np.uint8))
    got, expected = payload_sha256(read_gzip_bytes(labels)), fm.FILES[('test', 'labels')][1]
    cache, debian = places['cache'], places['debian']
    with pytest.warns(UserWarning), pytest.raises(fm.DataNotFoundError) as info:
        fm.load_arrays(download=False, mirrors=())
    assert str(info.value) == (
        f'Fashion-MNIST not found in {cache}, {debian} ({labels}: checksum mismatch (sha256 '
        f'{got[:12]}..., expected {expected[:12]}...): the file is corrupt; delete it; '
        f"download disabled). Fix: install Debian's package "
        f'(sudo apt-get install dataset-fashion-mnist), or put the four .gz files from '
        f'{fm.MIRRORS[0]} into {cache} or the directory given as root / $D2LNETS_FASHION_MNIST.')
    with pytest.warns(UserWarning), pytest.raises(fm.DataNotFoundError) as info:
        fm.load_arrays(download=False, mirrors=('http://mirror.example/a/', 'http://b/'))
    assert 'the four .gz files from http://mirror.example/a/ into' in str(info.value)


def test_a_skipped_place_is_warned_about_at_the_callers_line_with_both_checksums(places):
    shutil.copytree(places['trusted'], places['cache'])
    path = places['cache'] / fm.FILES[('train', 'labels')][0]
    write_idx(path, np.full(20, 3, dtype=np.uint8))
    got = payload_sha256(read_gzip_bytes(path))
    expected = fm.FILES[('train', 'labels')][1]
    with pytest.warns(UserWarning) as record, pytest.raises(fm.DataNotFoundError):
        fm.load_arrays(download=False)
    assert len(record) == 1
    assert str(record[0].message) == (
        f'skipping {places["cache"]}: {path}: checksum mismatch (sha256 {got[:12]}..., '
        f'expected {expected[:12]}...): the file is corrupt; delete it')
    # The line that called load_arrays; under mutmut, its trampoline is that caller.
    assert record[0].filename == __file__ or record[0].filename.endswith(
        os.path.join('mutmut', 'mutation', 'trampoline.py'))


def test_only_the_files_missing_from_the_target_are_downloaded(places, mirror_server, tmp_path):
    """Three good files stay; the mirror, which has only the fourth, is enough."""
    missing = fm.FILES[('test', 'labels')][0]
    shutil.copytree(places['trusted'], places['cache'])
    (places['cache'] / missing).unlink()
    before = {name: os.stat(places['cache'] / name).st_mtime_ns
              for name in os.listdir(places['cache'])}
    (tmp_path / 'one-file').mkdir()
    shutil.copy(places['trusted'] / missing, tmp_path / 'one-file' / missing)
    arrays = fm.load_arrays(mirrors=(mirror_server + 'one-file/',))
    np.testing.assert_array_equal(arrays['test'][1], np.arange(10))
    assert {name: os.stat(places['cache'] / name).st_mtime_ns for name in before} == before


def test_each_mirrors_failure_is_named_in_the_message(places, mirror_server, tmp_path):
    name = fm.FILES[('train', 'images')][0]
    bad = tmp_path / 'bad-mirror'
    bad.mkdir()
    (bad / name).write_bytes(b'cut')
    mirrors = (mirror_server + 'missing/', mirror_server + 'bad-mirror/')
    with pytest.raises(fm.DataNotFoundError) as info:
        fm.load_arrays(mirrors=mirrors)
    message = str(info.value)
    assert (f'(download into {places["cache"]} failed: no mirror served {name} '
            f'({mirrors[0]}{name}: File not found; {mirrors[1]}{name}: ') in message
    assert re.search(re.escape(f'{mirrors[1]}{name}: {places["cache"]}{os.sep}.{name}.')
                     + r'[^ ;]*\.part: not a whole gzip file \(', message)


def test_a_mirror_that_never_answers_times_out(places, monkeypatch, silent_server):
    """A mirror that takes the connection and never answers costs the timeout,
    not the rest of the day."""
    monkeypatch.setattr(fm, 'DOWNLOAD_TIMEOUT_S', 0.3)
    url = silent_server
    start = time.monotonic()
    with pytest.raises(fm.DataNotFoundError) as info:
        fm.load_arrays(mirrors=(url,))
    assert time.monotonic() - start < 5
    assert f'{url}{fm.FILES[("train", "images")][0]}: timed out)' in str(info.value)
