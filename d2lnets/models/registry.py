"""A registry of model builders, keyed by each builder's own name.

`register_model` records a builder with the input shape it is meant for (one
example, channels first); `get_model(name, **kwargs)` calls it;
`list_models()` lists the names. A name registered twice is an error.
"""
_BUILDERS = {}
_INPUT_SHAPES = {}


def register_model(input_shape):
    """Decorator: register a builder under its function name."""
    def register(builder):
        name = builder.__name__
        if name in _BUILDERS:
            raise ValueError(f'a model named {name!r} is registered already')
        _BUILDERS[name] = builder
        _INPUT_SHAPES[name] = tuple(input_shape)
        return builder
    return register


def list_models():
    """The registered model names, sorted."""
    return sorted(_BUILDERS)


class UnknownModelError(LookupError):
    """A model name that is not registered."""


def _check_name(name):
    if name not in _BUILDERS:
        raise UnknownModelError(f'unknown model {name!r}; valid names: {", ".join(list_models())}')


def get_model(name, **kwargs):
    """Build the model registered as `name` with the builder's keyword arguments."""
    _check_name(name)
    return _BUILDERS[name](**kwargs)


def model_input_shape(name):
    """The input shape (C, H, W) the model `name` is meant for."""
    _check_name(name)
    return _INPUT_SHAPES[name]
