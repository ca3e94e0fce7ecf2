"""d2lnets: the classic convolutional networks of Dive into Deep Learning
(https://d2l.ai, chapters 7 and 8: convolutional networks, classic and modern),
in MXNet Gluon.

Modules: `models` (the architectures and their registry), `data` (Fashion-MNIST
batches), `train` (`train_ch5`), `inspection` (per-layer shapes, parameter
counts), `plotting`, `checkpoint`, `history`, `cli` (what chapters share).
"""
from ._threads import tune_threads

tune_threads()

try:
    import mxnet  # noqa: F401  (checked first: every module needs it)
except ImportError as err:
    raise ImportError(
        f'd2lnets needs MXNet ({err}): pip install "d2lnets[cpu]", or "d2lnets[gpu]" '
        f'on a machine with CUDA 11.2') from None

from .data import load_data_fashion_mnist  # noqa: E402
from .inspection import count_parameters, layer_table, print_layer_shapes  # noqa: E402
from .models import get_model, list_models  # noqa: E402
from .train import evaluate_accuracy, train_ch5  # noqa: E402

__version__ = '0.1.0'
__all__ = ['load_data_fashion_mnist', 'train_ch5', 'evaluate_accuracy', 'print_layer_shapes',
           'layer_table', 'count_parameters', 'get_model', 'list_models']
