"""The model registry: names and errors."""
import pytest

from d2lnets.models import UnknownModelError, get_model, list_models
from d2lnets.models.registry import register_model


def test_names_are_the_builders_own():
    from d2lnets.models import registry
    assert set(registry._BUILDERS) == set(list_models())
    for name, builder in registry._BUILDERS.items():
        assert builder.__name__ == name
        assert builder.__doc__
    assert 'vgg16' in list_models() and 'vgg11_fashion' in list_models()
    assert list_models() == sorted(list_models())


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownModelError) as info:
        get_model('vgg17')
    message = str(info.value)
    assert "unknown model 'vgg17'" in message
    assert all(name in message for name in list_models())


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="'vgg16' is registered already"):
        @register_model(input_shape=(3, 224, 224))
        def vgg16():
            pass
