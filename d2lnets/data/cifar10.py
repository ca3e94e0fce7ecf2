"""CIFAR-10 (Krizhevsky, "Learning Multiple Layers of Features from Tiny
Images", 2009) from its python-pickle batches, as the book uses it for
image augmentation and its Kaggle chapter (D2L sections 14.1 and 14.13).

The folder `cifar-10-batches-py` (five `data_batch_N`, `test_batch`,
`batches.meta`) is looked for in an explicit `root` only (never silently
in another copy), or else in $D2LNETS_CIFAR10 and then MXNet's cache
`$MXNET_HOME/datasets/cifar10`; `root` may also be that folder itself. If it
is not found, `cifar-10-python.tar.gz` is downloaded, checked and unpacked
into the root, or else the cache. Every file's MD5 is checked
before it is unpickled (the archive's and the files' published MD5s, as
torchvision checks them), so a pickle that is not CIFAR-10 is never loaded.
"""
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request

import numpy as np

from .sources import DOWNLOAD_TIMEOUT_S, DataNotFoundError, explicit_dirs, mxnet_dataset_dir

ENV_VAR = 'D2LNETS_CIFAR10'
FOLDER = 'cifar-10-batches-py'
ARCHIVE_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
ARCHIVE_MD5 = 'c58f30108f718f92721af3b95e74349a'
TRAIN_FILES = ('data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5')
TEST_FILES = ('test_batch',)
META_FILE = 'batches.meta'
CHECKSUMS = {
    'data_batch_1': 'c99cafc152244af753f735de768cd75f',
    'data_batch_2': 'd4bba439e000b95fd0a9bffe97cbabec',
    'data_batch_3': '54ebc095f3ab1f0389bbae665268c751',
    'data_batch_4': '634d18415352ddfa80567beed471001a',
    'data_batch_5': '482c414d41f54cd18b22e5b47cb7c3cb',
    'test_batch': '40351d587109b95175f43aff81a1287e',
    'batches.meta': '5ff9c542aee3614f3951f8cda6e48888',
}


class CorruptFileError(ValueError, DataNotFoundError):
    """A CIFAR-10 file whose checksum or layout is wrong (no usable data, as
    a chapter reports it)."""


def cache_dir():
    return mxnet_dataset_dir('cifar10')


def search_dirs(root=None):
    """The folders searched, in order: each place itself and its FOLDER. An
    explicit `root` is the only place; else $D2LNETS_CIFAR10 (if set) and the cache."""
    places = [os.path.expanduser(root)] if root else explicit_dirs(None, ENV_VAR) + [cache_dir()]
    return [d for base in places for d in (base, os.path.join(base, FOLDER))]


def load_cifar10(root=None, download=True, url=ARCHIVE_URL, checksums=CHECKSUMS,
                 archive_md5=ARCHIVE_MD5):
    """CIFAR-10 as NumPy arrays.

    Returns {'train': (images, labels), 'test': (images, labels), 'classes':
    [names]}: images uint8 of shape (N, 32, 32, 3), labels int64. Raises
    `DataNotFoundError` (one line, with the fix) when the files are neither
    found nor downloadable, and `CorruptFileError` for a damaged file.
    """
    names = TRAIN_FILES + TEST_FILES + (META_FILE,)
    for directory in search_dirs(root):
        if all(os.path.isfile(os.path.join(directory, name)) for name in names):
            return _read(directory, checksums)
    problems = []
    if download:
        target = os.path.expanduser(root or os.environ.get(ENV_VAR) or cache_dir())
        try:
            _download(url, archive_md5, target)
            return _read(os.path.join(target, FOLDER), checksums)
        except (OSError, urllib.error.URLError, tarfile.TarError, CorruptFileError) as err:
            problems.append(f'download into {target} failed: {getattr(err, "reason", err)}')
    else:
        problems.append('download disabled')
    raise DataNotFoundError(
        f"CIFAR-10 not found in {', '.join(search_dirs(root))} ({'; '.join(problems)}). "
        f"Fix: unpack {url} so that {FOLDER}/ lies in {cache_dir()} or in the directory "
        f"given as root / ${ENV_VAR}.")


def _read(directory, checksums):
    arrays = {}
    for split, files in (('train', TRAIN_FILES), ('test', TEST_FILES)):
        parts = [_unpickle(os.path.join(directory, name), checksums) for name in files]
        try:
            images = np.concatenate([np.asarray(p[b'data'], dtype=np.uint8) for p in parts])
            labels = np.concatenate([np.asarray(p[b'labels'], dtype=np.int64) for p in parts])
            images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        except (KeyError, ValueError) as err:
            raise CorruptFileError(f'{directory}: not CIFAR-10 batches ({err})') from None
        if len(images) != len(labels):
            raise CorruptFileError(f'{directory}: {len(images)} images but {len(labels)} labels')
        arrays[split] = (np.ascontiguousarray(images), labels)
    meta = _unpickle(os.path.join(directory, META_FILE), checksums)
    arrays['classes'] = [name.decode() for name in meta[b'label_names']]
    return arrays


def _unpickle(path, checksums):
    with open(path, 'rb') as f:
        content = f.read()
    if checksums is not None:
        got = hashlib.md5(content).hexdigest()
        expected = checksums[os.path.basename(path)]
        if got != expected:
            raise CorruptFileError(f'{path}: checksum mismatch (md5 {got}, expected {expected}):'
                                   f' the file is damaged or not CIFAR-10; delete it')
    return pickle.loads(content, encoding='bytes')


def _download(url, md5, target):
    """Fetch the archive, check its MD5 and unpack FOLDER into `target`."""
    os.makedirs(target, exist_ok=True)
    fd, archive = tempfile.mkstemp(dir=target, suffix='.tar.gz.part')
    try:
        with os.fdopen(fd, 'wb') as out, \
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            shutil.copyfileobj(response, out)
        with open(archive, 'rb') as f:
            got = hashlib.md5(f.read()).hexdigest()
        if got != md5:
            raise CorruptFileError(f'{url}: md5 {got}, expected {md5}')
        with tarfile.open(archive) as tar:
            tar.extractall(target, members=[m for m in tar.getmembers()
                                            if m.name.startswith(FOLDER + '/')], filter='data')
    finally:
        os.remove(archive)
