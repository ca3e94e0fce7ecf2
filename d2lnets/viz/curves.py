"""Draw a training history: loss and accuracies per epoch, as the book's
Animator does while it trains, into a notebook (live), an axis or a PNG file."""
import io

from matplotlib.figure import Figure

from .._files import save_figure
from .pictures import Picture


def plot_history(history, ax=None, title=None):
    """Draw train loss, train accuracy and test accuracy against the epoch on `ax`."""
    if ax is None:
        ax = Figure(figsize=(5, 3.5)).add_subplot()
    epochs = history.column('epoch')
    for field, label, style in (('loss', 'train loss', '-'),
                                ('train_acc', 'train acc', '--'),
                                ('test_acc', 'test acc', '-.')):
        ax.plot(epochs, history.column(field), style, marker='o', label=label)
    ax.set_xlabel('epoch')
    ax.set_xticks(epochs)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_side_by_side(histories, figsize=None):
    """One panel of `plot_history` per run, side by side with a shared y axis:
    `histories` maps each panel's title to its History (e.g. a fine-tuned
    network and the same network trained from scratch, D2L section 14.2).
    Returns the Figure, which a notebook cell shows as its value."""
    figure = Picture(figsize=figsize or (4.5 * len(histories), 3.5))
    axes = figure.subplots(1, len(histories), sharey=True, squeeze=False)[0]
    for ax, (title, history) in zip(axes, histories.items(), strict=True):
        plot_history(history, ax=ax, title=title)
    figure.tight_layout()
    return figure


def save_history_plot(history, path, title=None):
    """Write the curves of `history` to the PNG file `path`."""
    ax = plot_history(history, title=title)
    ax.figure.tight_layout()
    save_figure(ax.figure, path, dpi=120)
    return path


class LivePlot:
    """Redraw the curves in place after every epoch in a notebook:
    `train_ch5(..., on_epoch=LivePlot())`."""

    def __init__(self, title=None):
        from IPython import display  # only notebooks need it
        self._display, self._handle, self.title = display, None, title

    def __call__(self, history):
        ax = plot_history(history, title=self.title)
        ax.figure.tight_layout()
        png = io.BytesIO()
        ax.figure.savefig(png, format='png', dpi=100)
        image = self._display.Image(data=png.getvalue(), format='png')
        if self._handle is None:
            self._handle = self._display.display(image, display_id=True)
        else:
            self._handle.update(image)
