"""The library's packages form layers: none imports a package above it, and
the names users import from the top keep working."""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'd2lnets')
# Lowest first; a module may import its own layer and the ones before it.
LAYERS = ['_messages', '_files', '_environment', '_threads', '_args', 'models', 'data', 'viz', 'training',
          'inference', 'classroom', 'recipes', 'transfer', 'cli', 'experiment', 'grade', 'reproduce']


def layer_of(module):
    """'d2lnets.training.loop' -> 'training'."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def imported_modules(path, module):
    """Absolute names of the d2lnets modules that the file at `path` imports."""
    tree = ast.parse(open(path).read(), path)
    package = module.split('.') if path.endswith('__init__.py') else module.split('.')[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            names += [target] + [f'{target}.{alias.name}' for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [n for n in names if n.startswith('d2lnets.')]


def library_modules():
    for directory, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(directory, name)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, '.')
                yield path, rel.removesuffix('.__init__')


@pytest.mark.parametrize('path,module', list(library_modules()), ids=lambda v: str(v))
def test_no_package_imports_one_above_it(path, module):
    own = layer_of(module)
    if own is None or module.endswith('__main__'):
        return  # d2lnets/__init__.py gathers the public names; a __main__ is a program on top
    assert own in LAYERS, f'{module}: add its package to LAYERS'
    for target in imported_modules(path, module):
        other = layer_of(target)
        if other in LAYERS:
            assert LAYERS.index(other) <= LAYERS.index(own), f'{module} imports {target}'


def test_the_book_names_import_from_the_top():
    import d2lnets
    from d2lnets.models import densenet, googlenet, resnet, vgg
    assert d2lnets.vgg is vgg.vgg and d2lnets.vgg_block is vgg.vgg_block
    assert d2lnets.Residual is resnet.Residual and d2lnets.Inception is googlenet.Inception
    assert d2lnets.DenseBlock is densenet.DenseBlock
    assert callable(d2lnets.train_ch5) and callable(d2lnets.load_data_fashion_mnist)
