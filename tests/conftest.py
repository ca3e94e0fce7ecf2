"""Import d2lnets before any test imports MXNet, so MXNet gets its cores;
fixtures the data tests share.

Under pytest-xdist (`-n auto` in setup.cfg) the workers share the machine's
cores: each gets its share of threads (and so do the processes it starts),
so that spinning OpenMP threads do not fight over the same cores, and the
wait policy is fixed rather than chosen from the load, which the other
workers make.
"""
import os

if 'PYTEST_XDIST_WORKER_COUNT' in os.environ and 'OMP_NUM_THREADS' not in os.environ:
    os.environ['OMP_NUM_THREADS'] = str(max(
        1, len(os.sched_getaffinity(0)) // int(os.environ['PYTEST_XDIST_WORKER_COUNT'])))
    os.environ.setdefault('OMP_WAIT_POLICY', 'ACTIVE')
    os.environ.setdefault('GOMP_SPINCOUNT', '300000')

import d2lnets  # noqa: E402,F401  (before MXNet)
import functools
import http.server
import socket
import threading

import numpy as np
import pytest


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def silent_server():
    """A server on loopback that takes a connection and never answers (for
    10 s at most, then hangs up); yields its base URL."""
    listener = socket.create_server(('127.0.0.1', 0))
    done = threading.Event()

    def hold():
        conn, _ = listener.accept()
        done.wait(10)  # long enough to tell a timeout from none; then hang up
        conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{listener.getsockname()[1]}/'
    finally:
        done.set()
        thread.join()
        listener.close()


@pytest.fixture
def mirror_server(tmp_path):
    """A web server on loopback serving tmp_path; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()
    server.server_close()


@pytest.fixture
def fashion_stand_in(tmp_path, monkeypatch):
    """A root of four small Fashion-MNIST IDX files (40 training images, 4 per
    class; 20 test images, 2 per class) that the checksum table trusts, and no
    other copy anywhere; yields (root, {(split, part): array})."""
    from d2lnets.data import fashion_mnist as fm
    from d2lnets.data.idx import payload_sha256, read_gzip_bytes, write_idx
    rng = np.random.default_rng(5)
    root = tmp_path / 'root'
    root.mkdir()
    arrays = {('train', 'images'): rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
              ('train', 'labels'): (np.arange(40) % 10).astype(np.uint8),
              ('test', 'images'): rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              ('test', 'labels'): (np.arange(20) % 10).astype(np.uint8)}
    table = {}
    for key, (name, _) in fm.FILES.items():
        write_idx(root / name, arrays[key])
        table[key] = (name, payload_sha256(read_gzip_bytes(root / name)))
    monkeypatch.setattr(fm, 'FILES', table)
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxnet-home'))
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setattr(fm, 'DEBIAN_DIR', str(tmp_path / 'debian'))
    return root, arrays
