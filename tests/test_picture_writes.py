"""A picture whose final write fails (a full disk) leaves the earlier file,
or none, never a cut-off or 0-byte one, and no temporary file beside it."""
import errno
import hashlib
import io
import os

import mxnet as mx
import numpy as np
import pytest
from matplotlib.figure import Figure
from mxnet import init
from mxnet.gluon import nn

from d2lnets.data.batches import ImageBatches
from d2lnets.training.history import History
from d2lnets.viz.curves import save_history_plot
from d2lnets.viz.pictures import PICTURE_FILES, save_run_pictures


def fill_the_disk_at(monkeypatch, name):
    """Figure.savefig writes half of the PNG meant for a file called `name`
    (or a temporary file for it), then fails as a full disk does."""
    original = Figure.savefig

    def savefig(self, target, **kwargs):
        if not isinstance(target, str) or name not in os.path.basename(target):
            return original(self, target, **kwargs)
        png = io.BytesIO()
        original(self, png, **{**kwargs, 'format': 'png'})
        with open(target, 'wb') as f:
            f.write(png.getvalue()[:len(png.getvalue()) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Figure, 'savefig', savefig)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def small_run():
    mx.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(2, kernel_size=3, activation='relu'), nn.Flatten(), nn.Dense(10))
    net.initialize(init.Xavier())
    rng = np.random.default_rng(0)
    batches = ImageBatches(rng.integers(0, 256, (20, 8, 8), dtype=np.uint8),
                           np.arange(20) % 10, 10)
    return net, batches


def test_a_failed_picture_write_keeps_the_earlier_file(small_run, tmp_path, monkeypatch):
    net, batches = small_run
    save_run_pictures(net, batches, mx.cpu(), str(tmp_path), None)
    assert sorted(os.listdir(tmp_path)) == sorted(PICTURE_FILES)
    before = {p: digest(tmp_path / p) for p in PICTURE_FILES}
    fill_the_disk_at(monkeypatch, 'confusion.png')
    with pytest.raises(OSError, match='No space left on device'):
        save_run_pictures(net, batches, mx.cpu(), str(tmp_path), None)
    assert sorted(os.listdir(tmp_path)) == sorted(PICTURE_FILES)  # no temporary file left
    assert {p: digest(tmp_path / p) for p in PICTURE_FILES} == before


def test_a_failed_first_write_leaves_no_file(small_run, tmp_path, monkeypatch):
    net, batches = small_run
    fill_the_disk_at(monkeypatch, 'architecture.png')
    with pytest.raises(OSError, match='No space left on device'):
        save_run_pictures(net, batches, mx.cpu(), str(tmp_path), None)
    assert os.listdir(tmp_path) == []


def test_a_failed_curves_write_leaves_no_file(tmp_path, monkeypatch):
    history = History()
    history.append(epoch=1, loss=1.0, train_acc=0.5, test_acc=0.5, time=1.0,
                   examples_per_sec=10.0)
    save_history_plot(history, str(tmp_path / 'curves.png'))
    before = digest(tmp_path / 'curves.png')
    fill_the_disk_at(monkeypatch, 'curves.png')
    with pytest.raises(OSError, match='No space left on device'):
        save_history_plot(history, str(tmp_path / 'curves.png'))
    assert os.listdir(tmp_path) == ['curves.png'] and digest(tmp_path / 'curves.png') == before
    os.remove(tmp_path / 'curves.png')
    with pytest.raises(OSError):
        save_history_plot(history, str(tmp_path / 'curves.png'))
    assert os.listdir(tmp_path) == []
