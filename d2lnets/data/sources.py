"""What the data-set modules (`fashion_mnist`, `cifar10`) share: where MXNet
caches data sets, the user's explicit folder, and the error for data that
is nowhere to be found."""
import os

DOWNLOAD_TIMEOUT_S = 30


class DataNotFoundError(RuntimeError):
    """A data set is nowhere to be found and could not be downloaded."""


def mxnet_dataset_dir(name):
    """MXNet's own cache folder for data set `name`: $MXNET_HOME/datasets/name."""
    home = os.environ.get('MXNET_HOME', os.path.join(os.path.expanduser('~'), '.mxnet'))
    return os.path.join(home, 'datasets', name)


def explicit_dirs(root, env_var):
    """[root], or [$env_var] when root is None and the variable is set, or []."""
    explicit = root or os.environ.get(env_var)
    return [os.path.expanduser(explicit)] if explicit else []
