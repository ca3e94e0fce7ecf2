"""d2lnets: the classic convolutional networks of Dive into Deep Learning
(https://d2l.ai, chapters 7 and 8: convolutional networks, classic and modern),
in MXNet Gluon.

Packages, lowest first (none imports one after it): `models` (the
architectures and their registry), `data` (Fashion-MNIST, CIFAR-10, photos,
augmentation), `viz` (per-layer shapes, parameter counts, curves),
`training` (`train_ch5`, checkpoints, history, several devices and
processes, fine-tuning), `inference` (prediction, the VGG paper's
evaluation), `classroom` (checking a student's block); then `cli`, what the
chapters share.

The book's builders and blocks are importable from here:
`from d2lnets import vgg_block, vgg, train_ch5, load_data_fashion_mnist`.
"""
from ._environment import check_environment, make_output_safe
from ._threads import tune_threads

check_environment()
make_output_safe()
tune_threads()

try:
    import mxnet  # noqa: F401  (checked first: every module needs it)
except ImportError as err:
    raise ImportError(
        f'd2lnets needs MXNet ({err}): pip install "d2lnets[cpu]", or "d2lnets[gpu]" '
        f'on a machine with CUDA 11.2') from None

# noqa: E402 below: MXNet must load after tune_threads()
from .data import load_data_fashion_mnist  # noqa: E402
from .models import get_model, list_models  # noqa: E402
from .models.alexnet import alexnet, alexnet_book  # noqa: E402
from .models.batchnorm import BatchNorm, batch_norm, lenet_bn, lenet_bn_scratch  # noqa: E402
from .models.densenet import DenseBlock, conv_block, densenet, densenet_book, transition_block  # noqa: E402,E501
from .models.googlenet import Inception, googlenet  # noqa: E402
from .models.lenet import lenet  # noqa: E402
from .models.nin import nin, nin_block  # noqa: E402
from .models.resnet import Residual, resnet18_book, resnet_block  # noqa: E402
from .models.squeezenet import Fire, squeezenet  # noqa: E402
from .models.vgg import vgg, vgg_block  # noqa: E402
from .training import evaluate_accuracy, train_ch5  # noqa: E402
from .viz import count_parameters, layer_table, print_layer_shapes  # noqa: E402

__version__ = '0.1.0'
__all__ = ['load_data_fashion_mnist', 'train_ch5', 'evaluate_accuracy', 'print_layer_shapes',
           'layer_table', 'count_parameters', 'get_model', 'list_models',
           'lenet', 'alexnet', 'alexnet_book', 'vgg_block', 'vgg', 'nin_block', 'nin',
           'Inception', 'googlenet', 'batch_norm', 'BatchNorm', 'lenet_bn', 'lenet_bn_scratch',
           'Residual', 'resnet_block', 'resnet18_book', 'conv_block', 'DenseBlock',
           'transition_block', 'densenet', 'densenet_book', 'Fire', 'squeezenet']
