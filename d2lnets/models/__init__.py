"""Model builders, one module per architecture, and the registry over them."""
from . import vgg
from .registry import UnknownModelError, get_model, list_models, model_input_shape

__all__ = ['vgg', 'get_model', 'list_models', 'model_input_shape', 'UnknownModelError']
