"""Draw a training history: loss and accuracies per epoch, as the book's
Animator does while it trains, into a notebook axis or a PNG file."""
from matplotlib.figure import Figure


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


def save_history_plot(history, path, title=None):
    """Write the curves of `history` to the PNG file `path`."""
    ax = plot_history(history, title=title)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=120)
    return path
