"""The progress bar inside an epoch: on where a person watches, silent under CI,
in a log file or with another `log`, and never changing the book's epoch line."""
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init
from mxnet.gluon import nn

from d2lnets.data.batches import ImageBatches
from d2lnets.training import progress
from d2lnets.training.loop import evaluate_accuracy, train_ch5

EPOCH = re.compile(r'^epoch (\d+), loss (\d+\.\d{4}), train acc (\d\.\d{3}), test acc '
                   r'(\d\.\d{3}), time \d+\.\d sec, \d+\.\d examples/sec$')


def tiny_run(**kwargs):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (96, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 10, 96, dtype=np.uint8)
    train_iter = ImageBatches(images, labels, 32, shuffle=True, seed=0)
    test_iter = ImageBatches(images[:40], labels[:40], 32)
    mx.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Flatten(), nn.Dense(10))
    net.initialize(init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    return train_ch5(net, train_iter, test_iter, 32, trainer, mx.cpu(), 2, **kwargs)


@pytest.fixture
def terminal(monkeypatch):
    """Pretend stdout and stderr are a terminal, with no $CI."""
    monkeypatch.delenv('CI', raising=False)
    monkeypatch.setattr(progress, '_is_terminal', lambda stream: True)


def check_epoch_lines(out, history):
    lines = out.splitlines()
    assert lines[0] == 'training on cpu(0)' and len(lines) == 3 and '\r' not in out
    for line, record in zip(lines[1:], history.epochs, strict=True):
        match = EPOCH.match(line)
        assert match, line
        assert int(match.group(1)) == record['epoch']
        assert match.group(2) == f"{record['loss']:.4f}"


def test_on_a_terminal_the_bar_goes_to_stderr_and_the_epoch_lines_stay(terminal, capsys):
    history = tiny_run()
    captured = capsys.readouterr()
    check_epoch_lines(captured.out, history)
    assert 'epoch 1:' in captured.err and 'epoch 2:' in captured.err and 'test:' in captured.err
    assert '/96 [' in captured.err and '/40 [' in captured.err and 'img/s' in captured.err


def test_under_ci_nothing_is_drawn(terminal, monkeypatch, capsys):
    monkeypatch.setenv('CI', 'true')
    history = tiny_run()
    captured = capsys.readouterr()
    check_epoch_lines(captured.out, history)
    assert captured.err == ''


def test_with_output_to_a_file_or_another_log_nothing_is_drawn(monkeypatch, capsys):
    monkeypatch.delenv('CI', raising=False)
    tiny_run()  # pytest's captured stdout is no terminal
    assert capsys.readouterr().err == ''
    monkeypatch.setattr(progress, '_is_terminal', lambda stream: True)
    lines = []
    tiny_run(log=lines.append)
    assert capsys.readouterr() == ('', '') and len(lines) == 3


def test_an_explicit_choice_wins(monkeypatch, capsys):
    monkeypatch.setenv('CI', 'true')
    tiny_run(progress=True, log=lambda line: None)
    assert 'img/s' in capsys.readouterr().err
    monkeypatch.delenv('CI')
    monkeypatch.setattr(progress, '_is_terminal', lambda stream: True)
    tiny_run(progress=False, log=lambda line: None)
    assert capsys.readouterr().err == ''


def test_the_rule(monkeypatch):
    monkeypatch.delenv('CI', raising=False)
    monkeypatch.setattr(progress, 'in_notebook', lambda: True)
    assert progress.show_progress() is True
    assert progress.show_progress(log=lambda line: None) is False
    monkeypatch.setenv('CI', '1')
    assert progress.show_progress() is False
    assert progress.show_progress(True) is True


def test_evaluation_shows_a_bar_and_the_same_accuracy(terminal, capsys):
    rng = np.random.default_rng(1)
    data = ImageBatches(rng.integers(0, 256, (50, 8, 8), dtype=np.uint8),
                        rng.integers(0, 10, 50, dtype=np.uint8), 16)
    net = nn.Dense(10)
    net.initialize()
    quiet = evaluate_accuracy(data, net, mx.cpu(), progress=False)
    assert capsys.readouterr().err == ''
    assert evaluate_accuracy(data, net, mx.cpu()) == quiet
    assert '/50 [' in capsys.readouterr().err


def test_a_run_stopped_inside_an_epoch_closes_its_bar(terminal, capsys):
    """Divergence (or Ctrl-C) in the middle of an epoch leaves no bar open
    to be drawn over the one-line error."""
    from tqdm import tqdm

    from d2lnets.training.loop import TrainingDiverged

    class Exploding:
        """Batches whose third has an infinite image."""

        def __iter__(self):
            rng = np.random.default_rng(2)
            for i in range(4):
                X = mx.nd.array(rng.random((8, 1, 8, 8)) * (np.inf if i == 2 else 1))
                yield X, mx.nd.array(rng.integers(0, 10, 8))

    net = nn.Dense(10)
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    with pytest.raises(TrainingDiverged) as info:  # holds the frames, as a handler would
        train_ch5(net, Exploding(), Exploding(), 8, trainer, mx.cpu(), 1, check_every=1,
                  progress=True)
    assert info.tb is not None and not tqdm._instances


class FakeIPython:
    """Stands for the IPython module: get_ipython() gives a shell of the class named."""

    def __init__(self, shell_class):
        self.shell = type(shell_class, (), {})() if shell_class else None

    def get_ipython(self):
        return self.shell


def test_a_notebook_is_ipythons_zmq_shell(monkeypatch):
    monkeypatch.delitem(__import__('sys').modules, 'IPython', raising=False)
    assert progress.in_notebook() is False
    for shell, expected in (('ZMQInteractiveShell', True), ('TerminalInteractiveShell', False),
                            (None, False)):
        monkeypatch.setitem(__import__('sys').modules, 'IPython', FakeIPython(shell))
        assert progress.in_notebook() is expected, shell


def test_a_terminal_is_what_says_so_and_a_closed_or_odd_stream_is_not():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True
    assert progress._is_terminal(Tty()) is True
    assert progress._is_terminal(io.StringIO()) is False
    closed = io.StringIO()
    closed.close()  # isatty on a closed stream raises ValueError
    assert progress._is_terminal(closed) is False
    assert progress._is_terminal(object()) is False  # no isatty at all


def test_a_bar_needs_both_stdout_and_stderr_on_a_terminal(monkeypatch):
    import sys
    monkeypatch.delenv('CI', raising=False)
    monkeypatch.setattr(progress, 'in_notebook', lambda: False)
    for out, err in ((True, False), (False, True), (False, False), (True, True)):
        monkeypatch.setattr(progress, '_is_terminal',
                            lambda stream, out=out, err=err: out if stream is sys.stdout else err)
        assert progress.show_progress() is (out and err), (out, err)
        assert progress.show_progress(0) is False and progress.show_progress(1) is True
    monkeypatch.setenv('CI', '')  # set but empty: not CI
    assert progress.show_progress() is True


def test_the_bar_counts_images_and_goes_when_done(monkeypatch, capsys):
    monkeypatch.setattr(progress, 'in_notebook', lambda: False)
    bar = progress.progress_bar(True, 40, 'epoch 3')
    assert (bar.total, bar.desc, bar.unit, bar.leave) == (40, 'epoch 3', 'img', False)
    assert bar.dynamic_ncols  # tqdm keeps a function that reads the width, or False
    bar.update(40)
    bar.close()
    err = capsys.readouterr().err
    drawn, cleared = err.split('\r')[1:3]
    assert drawn.startswith('epoch 3:   0%|') and '0/40 [' in drawn and 'img/s]' in drawn
    assert cleared == ' ' * len(drawn) and err.endswith('\r')  # leave=False: no line left
    quiet = progress.progress_bar(False, 40, 'epoch 3')
    quiet.update(40)
    quiet.close()
    assert capsys.readouterr() == ('', '')


def test_in_a_notebook_the_bar_is_tqdm_auto(monkeypatch):
    import tqdm.auto

    class NotebookBar:
        def __init__(self, **kwargs):
            self.kwargs = kwargs
    monkeypatch.setattr(tqdm.auto, 'tqdm', NotebookBar)
    monkeypatch.setattr(progress, 'in_notebook', lambda: True)
    bar = progress.progress_bar(True, None, 'test')
    assert isinstance(bar, NotebookBar)
    assert bar.kwargs == {'total': None, 'desc': 'test', 'unit': 'img', 'leave': False,
                          'dynamic_ncols': True}
    monkeypatch.setattr(progress, 'in_notebook', lambda: False)
    assert not isinstance(progress.progress_bar(True, 1, 'test'), NotebookBar)


def test_examples_in_reads_num_examples_or_the_loaders_data_set():
    class Batches:
        num_examples = 7

    class Loader:
        _dataset = list(range(9))

    class Unsized:
        _dataset = iter(range(3))
    assert progress.examples_in(Batches()) == 7
    assert progress.examples_in(Loader()) == 9
    assert progress.examples_in(Unsized()) is None
    assert progress.examples_in(object()) is None
    assert progress.examples_in(gluon.data.DataLoader(
        gluon.data.ArrayDataset(np.zeros((5, 2))), batch_size=2)) == 5


def test_the_terminal_check_asks_stdout_and_stderr_themselves(monkeypatch):
    """Each of the two streams is asked, not a stand-in: the bar is drawn when
    both real streams are terminals (and only those two answer yes here)."""
    import sys
    monkeypatch.delenv('CI', raising=False)
    monkeypatch.setattr(progress, 'in_notebook', lambda: False)
    asked = []

    def is_terminal(stream):
        asked.append(stream)
        return stream is sys.stdout or stream is sys.stderr
    monkeypatch.setattr(progress, '_is_terminal', is_terminal)
    assert progress.show_progress() is True
    assert asked == [sys.stdout, sys.stderr]
