"""Model builders, one module per architecture, and the registry over them."""
from . import alexnet, batchnorm, densenet, googlenet, lenet, nin, resnet, squeezenet, vgg
from .registry import UnknownModelError, get_model, list_models, model_input_shape

__all__ = ['alexnet', 'batchnorm', 'densenet', 'googlenet', 'lenet', 'nin', 'resnet',
           'squeezenet', 'vgg',
           'get_model', 'list_models', 'model_input_shape', 'UnknownModelError']
