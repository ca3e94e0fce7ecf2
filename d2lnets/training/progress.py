"""A progress bar inside an epoch: examples done, examples/s and time left.

For long epochs (AlexNet or VGG at 224x224 on a CPU take many minutes each)
`train_ch5` and `evaluate_accuracy` show a tqdm bar -- a widget in Jupyter
(`tqdm.auto`), text on a terminal -- that disappears when the epoch ends, so
the book's epoch line is printed exactly as before. The bar is on only where
a person watches: a notebook, or a terminal on both stdout and stderr (where
it is drawn); off when $CI is set, when output goes to a file or a pipe, and
when the caller passes its own `log` (its lines go elsewhere).
"""
import os
import sys


class _NoBar:
    """What an epoch counts on when no bar is shown: nothing is printed."""

    def update(self, count):
        pass

    def close(self):
        pass


def in_notebook():
    """True inside a Jupyter kernel (IPython's ZMQ shell)."""
    shell = sys.modules.get('IPython') and sys.modules['IPython'].get_ipython()
    return type(shell).__name__ == 'ZMQInteractiveShell'


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def show_progress(progress=None, log=print):
    """Whether to draw a bar: `progress` True or False decides; None (auto) means
    yes in a notebook or on a terminal, no under $CI, when stdout or stderr is
    not a terminal, or when `log` is not `print`."""
    if progress is not None:
        return bool(progress)
    if os.environ.get('CI') or log is not print:
        return False
    return in_notebook() or (_is_terminal(sys.stdout) and _is_terminal(sys.stderr))


def progress_bar(show, total, description):
    """A bar of `total` examples (None when unknown) titled `description`, or one
    that prints nothing when `show` is false. Call `update(n)` and `close()`."""
    if not show:
        return _NoBar()
    if in_notebook():
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=description, unit='img', leave=False,
                dynamic_ncols=True)


def examples_in(data_iter):
    """How many examples `data_iter` holds, when it can tell (ImageBatches, a
    Gluon DataLoader over a sized data set); else None."""
    count = getattr(data_iter, 'num_examples', None)
    if count is None:
        dataset = getattr(data_iter, '_dataset', None)
        count = len(dataset) if hasattr(dataset, '__len__') else None
    return count
