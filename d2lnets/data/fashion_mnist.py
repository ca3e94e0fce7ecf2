"""Find, verify and (when online) download Fashion-MNIST.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, arXiv:1708.07747) is the data set
of the book's chapters (D2L section 4.2; 3.5 in the first MXNet edition). The
four gzipped IDX files are looked
for, in order, in:

1. the directory named by $D2LNETS_FASHION_MNIST, when it is set;
2. MXNet's cache, `$MXNET_HOME/datasets/fashion-mnist` (default `~/.mxnet`);
3. `/usr/share/datasets/fashion-mnist`, where Debian's `dataset-fashion-mnist`
   package puts them.

An explicit `root` is the only place looked in: a root that is wrong or empty
is never silently replaced by another copy. The first place holding all four
files that pass their checksums wins. If none does, the files are downloaded
(trying each mirror in turn) into the explicit root, or else the
$D2LNETS_FASHION_MNIST directory or MXNet's cache, and verified before they
are kept.

Checksums are of the decompressed IDX bytes, so that the same data recompressed
by a packager (Debian's files differ from upstream's byte for byte as gzip, not
as IDX) still passes, while a truncated or altered file never loads.
"""
import os
import shutil
import urllib.error
import urllib.request
import warnings
from functools import lru_cache

from .._files import replacing
from .sources import DOWNLOAD_TIMEOUT_S, DataNotFoundError, explicit_dirs, mxnet_dataset_dir
from .idx import IDXError, parse_idx, payload_sha256, read_gzip_bytes

ENV_VAR = 'D2LNETS_FASHION_MNIST'
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
MIRRORS = (
    'https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/fashion-mnist/',
    'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
)
# (split, part) -> (file name, SHA-256 of the decompressed IDX bytes)
FILES = {
    ('train', 'images'): ('train-images-idx3-ubyte.gz',
                          'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888'),
    ('train', 'labels'): ('train-labels-idx1-ubyte.gz',
                          'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9'),
    ('test', 'images'): ('t10k-images-idx3-ubyte.gz',
                         '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b'),
    ('test', 'labels'): ('t10k-labels-idx1-ubyte.gz',
                         '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34'),
}
TEXT_LABELS = ('t-shirt', 'trouser', 'pullover', 'dress', 'coat',
               'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot')
NUM_CLASSES = len(TEXT_LABELS)
SPLIT_SIZES = {'train': 60000, 'test': 10000}


def get_fashion_mnist_labels(labels):
    """The text label of each numeric label (D2L section 4.2)."""
    return [TEXT_LABELS[int(i)] for i in labels]


def mxnet_cache_dir():
    """MXNet's own cache directory for Fashion-MNIST."""
    return mxnet_dataset_dir('fashion-mnist')


def search_dirs(root=None):
    """The directories searched, in order, for the four files: an explicit
    `root` alone, or else $D2LNETS_FASHION_MNIST (if set), the cache, Debian's."""
    if root:
        return [os.path.expanduser(root)]
    return explicit_dirs(None, ENV_VAR) + [mxnet_cache_dir(), DEBIAN_DIR]


def load_arrays(root=None, download=True, mirrors=MIRRORS):
    """Fashion-MNIST as NumPy arrays: {'train': (images, labels), 'test': (...)}.

    Images are uint8 of shape (N, 28, 28); labels are uint8 of shape (N,).
    Raises `DataNotFoundError` with a one-line message when the files are
    neither found nor downloadable.
    """
    dirs = search_dirs(root)
    problems = []
    for directory in dirs:
        if not all(os.path.isfile(os.path.join(directory, name)) for name, _ in FILES.values()):
            continue
        try:
            return _read_verified(directory, _stamp(directory))
        except IDXError as err:
            problems.append(str(err))
            warnings.warn(f'skipping {directory}: {err}', stacklevel=2)
    if download:
        target = dirs[0] if (root or os.environ.get(ENV_VAR)) else mxnet_cache_dir()
        try:
            _download_all(target, mirrors)
            return _read_verified(target, _stamp(target))
        except (OSError, IDXError) as err:
            problems.append(f'download into {target} failed: {err}')
    else:
        problems.append('download disabled')
    raise DataNotFoundError(
        f"Fashion-MNIST not found in {', '.join(dirs)} ({'; '.join(problems)}). "
        f"Fix: install Debian's package (sudo apt-get install dataset-fashion-mnist), "
        f"or put the four .gz files from {mirrors[0] if mirrors else MIRRORS[0]} "
        f"into {mxnet_cache_dir()} or the directory given as root / ${ENV_VAR}.")


def _stamp(directory):
    """What identifies the files' current content, for the in-process cache."""
    stats = [os.stat(os.path.join(directory, name)) for name, _ in FILES.values()]
    return tuple((s.st_size, s.st_mtime_ns, s.st_ino) for s in stats)


@lru_cache(maxsize=4)
def _read_verified(directory, stamp):
    """Parse the four files of `directory`, checking each one's checksum."""
    del stamp  # part of the cache key only
    arrays = {}
    for (split, part), (name, sha256) in FILES.items():
        path = os.path.join(directory, name)
        payload = _verified_payload(path, sha256)
        arrays.setdefault(split, {})[part] = parse_idx(payload, path)
    return {split: (a['images'], a['labels']) for split, a in arrays.items()}


def _verified_payload(path, sha256):
    payload = read_gzip_bytes(path)
    got = payload_sha256(payload)
    if got != sha256:
        raise IDXError(f'{path}: checksum mismatch (sha256 {got[:12]}..., expected '
                       f'{sha256[:12]}...): the file is corrupt; delete it')
    return payload


def _download_all(target, mirrors):
    os.makedirs(target, exist_ok=True)
    for name, sha256 in FILES.values():
        path = os.path.join(target, name)
        if os.path.isfile(path):
            try:
                _verified_payload(path, sha256)
                continue
            except IDXError:
                pass  # corrupt: fetched again below
        _download_one(name, sha256, target, mirrors)


def _download_one(name, sha256, target, mirrors):
    """Fetch `name` from the first mirror that serves it whole, atomically."""
    failures = []
    for base in mirrors:
        url = base + name
        try:
            with replacing(os.path.join(target, name)) as tmp:
                with open(tmp, 'wb') as out, \
                        urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    shutil.copyfileobj(response, out)
                _verified_payload(tmp, sha256)
            return
        except (OSError, IDXError, urllib.error.URLError) as err:
            failures.append(f'{url}: {getattr(err, "reason", err)}')
    raise OSError(f'no mirror served {name} ({"; ".join(failures)})')
