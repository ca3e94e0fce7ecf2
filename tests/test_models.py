"""Every architecture: published parameter counts, MXNet's model zoo, the
book's shape tables, and the behaviour of every registered model."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, init, nd

from d2lnets.viz.shapes import count_parameters, layer_table, multiply_adds
from d2lnets.models import get_model, list_models, model_input_shape
from d2lnets.models.googlenet import Inception
from d2lnets.models.squeezenet import squeezenet

# Learnable parameters published for the ImageNet models (torchvision's model
# cards; MXNet's model zoo agrees where ZOO below names its model).
PUBLISHED = {
    'alexnet_imagenet': 61_100_840,
    'resnet18': 11_689_512, 'resnet34': 21_797_672, 'resnet50': 25_557_032,
    'resnet101': 44_549_160, 'resnet152': 60_192_808,
    'densenet121': 7_978_856, 'densenet161': 28_681_000, 'densenet169': 14_149_480,
    'densenet201': 20_013_928,
    'squeezenet1_0': 1_248_424, 'squeezenet1_1': 1_235_496,
}
# MXNet's model zoo builds these to the parameter, moving statistics included.
# ResNet-50/101/152 come in two layouts: `resnet50` etc. are v1.5 (torchvision's,
# the counts above: stride on the 3x3 convolution, no biases); the zoo's
# `resnet50_v1` etc. stride the first 1x1 convolution of a downsampling block
# and give the first and last 1x1 convolutions of every bottleneck a bias,
# as `resnet50_v1` etc. here do. tests/test_model_outputs.py compares outputs.
ZOO = {'alexnet_imagenet': 'alexnet', 'resnet18': 'resnet18_v1', 'resnet34': 'resnet34_v1',
       'resnet50_v1': 'resnet50_v1', 'resnet101_v1': 'resnet101_v1',
       'resnet152_v1': 'resnet152_v1',
       'densenet121': 'densenet121', 'densenet161': 'densenet161',
       'densenet169': 'densenet169', 'densenet201': 'densenet201',
       'squeezenet1_0': 'squeezenet1_0', 'squeezenet1_1': 'squeezenet1_1'}

# The book's per-layer output shapes (first MXNet edition), one example.
BOOK_SHAPES = {
    'lenet_first_edition': [(6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 4, 4), (120,), (84,),
                            (10,)],
    'lenet': [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (120,), (84,), (10,)],
    'alexnet_book': [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12),
                     (384, 12, 12), (256, 12, 12), (256, 5, 5), (4096,), (4096,), (4096,),
                     (4096,), (10,)],
    'nin': [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12),
            (384, 5, 5), (384, 5, 5), (10, 5, 5), (10, 1, 1), (10,)],
    'googlenet': [(64, 24, 24), (192, 12, 12), (480, 6, 6), (832, 3, 3), (1024, 1, 1), (10,)],
    'resnet18_book': [(64, 48, 48), (64, 48, 48), (64, 48, 48), (64, 24, 24), (64, 24, 24),
                      (128, 12, 12), (256, 6, 6), (512, 3, 3), (512, 1, 1), (10,)],
    'densenet_book': [(64, 48, 48), (64, 48, 48), (64, 48, 48), (64, 24, 24), (192, 24, 24),
                      (96, 12, 12), (224, 12, 12), (112, 6, 6), (240, 6, 6), (120, 3, 3),
                      (248, 3, 3), (248, 3, 3), (248, 3, 3), (248, 1, 1), (10,)],
}


def one(name):
    return (1,) + model_input_shape(name)


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_published_parameter_counts(name):
    assert count_parameters(get_model(name), one(name), trainable_only=True) == PUBLISHED[name]


@pytest.mark.parametrize('name', sorted(ZOO))
def test_equal_to_mxnet_model_zoo(name):
    zoo = getattr(mx.gluon.model_zoo.vision, ZOO[name])()
    assert count_parameters(get_model(name), one(name)) == count_parameters(zoo, one(name))


@pytest.mark.parametrize('name', sorted(BOOK_SHAPES))
def test_book_shape_tables(name):
    shapes = [r.output_shape[1:] for r in layer_table(get_model(name), one(name))]
    assert shapes == BOOK_SHAPES[name]


def test_inception_output_channels():
    block = Inception(64, (96, 128), (16, 32), 32)
    assert layer_table(block, (2, 192, 28, 28))[0].output_shape == (2, 256, 28, 28)


def test_googlenet_on_cifar10_images():
    net = get_model('googlenet_cifar10')
    assert layer_table(net, (8, 3, 32, 32))[-1].output_shape == (8, 10)
    assert layer_table(net, (8, 3, 96, 96))[-1].output_shape == (8, 10)


def test_squeezenet_bypasses():
    """Simple bypass adds no parameters; complex adds 1x1 convolutions around
    Fire 2, 4, 6 and 8: (96->128) + (128->256) + (256->384) + (384->512), with biases."""
    shape = (1, 3, 224, 224)
    plain = count_parameters(squeezenet('1.0'), shape)
    assert count_parameters(squeezenet('1.0', 'simple'), shape) == plain
    extra = 96 * 128 + 128 + 128 * 256 + 256 + 256 * 384 + 384 + 384 * 512 + 512
    assert count_parameters(squeezenet('1.0', 'complex'), shape) == plain + extra
    with pytest.raises(ValueError, match="unknown bypass 'partial'"):
        squeezenet('1.0', 'partial')


@pytest.mark.parametrize('version,bypass', [('1.0', 'none'), ('1.1', 'complex')])
def test_squeezenet_keeps_its_initialisation_and_its_signal(version, bypass):
    """Given the book's init.Xavier(), SqueezeNet keeps its own: He's for the
    convolutions (std sqrt(2 / fan-in)), N(0, 0.01) for the output
    convolution; so the signal reaches the classifier undiminished (Xavier's
    left about 1e-4 of it and the loss at ln 10)."""
    mx.random.seed(0)
    net = squeezenet(version, bypass, num_classes=10)
    net.initialize(init.Xavier())
    x = nd.random.uniform(shape=(8, 1, 64, 64))
    features = net.features[:-1](x)  # all but the dropout
    net(x)
    convs = [p for name, p in net.collect_params('.*weight').items() if 'output' not in name]
    for param in convs:
        weight = param.data().asnumpy()
        fan_in = np.prod(weight.shape[1:])
        assert weight.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.15), param.name
    assert net.output[0].weight.data().asnumpy().std() == pytest.approx(0.01, rel=0.15)
    assert features.asnumpy().std() > 0.2 * x.asnumpy().std()


@pytest.mark.parametrize('name', [pytest.param(n, marks=pytest.mark.slow) if n.endswith('_v1')
                                  else n for n in list_models() if not n.startswith('vgg')])
def test_every_model(name):
    """Output shape, finite values, hybridized equal to imperative, gradients reach the input."""
    mx.random.seed(0)
    net = get_model(name, num_classes=7)
    net.initialize(init.Xavier())
    X = nd.random.uniform(shape=(2,) + model_input_shape(name))
    imperative = net(X).asnumpy()
    assert imperative.shape == (2, 7)
    assert np.isfinite(imperative).all()
    net.hybridize(static_alloc=True, static_shape=True)
    np.testing.assert_allclose(net(X).asnumpy(), imperative, rtol=1e-4, atol=1e-5)
    X.attach_grad()
    with autograd.record():
        net(X)[:, 1].sum().backward()
    assert np.abs(X.grad.asnumpy()).sum() > 0 and np.isfinite(X.grad.asnumpy()).all()


# Multiply-adds at 224x224 in billions, as torchvision's model cards publish them.
PUBLISHED_GMACS = {'alexnet_imagenet': 0.71, 'vgg11': 7.61, 'vgg16': 15.47, 'vgg19': 19.63,
                   'resnet18': 1.81, 'resnet34': 3.66, 'resnet50': 4.09, 'resnet152': 11.51,
                   'densenet121': 2.83, 'densenet161': 7.73, 'squeezenet1_0': 0.82,
                   'squeezenet1_1': 0.35}


@pytest.mark.parametrize('name', sorted(PUBLISHED_GMACS))
def test_published_multiply_adds(name):
    assert round(multiply_adds(get_model(name), one(name)) / 1e9, 2) == PUBLISHED_GMACS[name]


def test_multiply_adds_by_hand():
    """LeNet (later edition): 28*28*6*25 + 10*10*16*150 + 400*120 + 120*84 + 84*10."""
    assert multiply_adds(get_model('lenet'), (1, 1, 28, 28)) == 416_520
    assert multiply_adds(get_model('lenet'), (3, 1, 28, 28)) == 3 * 416_520


def test_model_table_command(capsys):
    from d2lnets.models.__main__ import main
    main(['resnet50', 'lenet', 'lenet_bn_scratch'])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ['model', 'input', 'parameters']
    assert lines[1].split() == ['resnet50', '3x224x224', '25,557,032', '4,089.2']
    assert lines[2].split() == ['lenet', '1x28x28', '61,706', '0.4']
    assert lines[3].split()[2:] == ['n/a', 'n/a', '(imperative)']
    with pytest.raises(SystemExit):
        main(['resnet51'])
    assert "unknown model(s) resnet51; valid: " in capsys.readouterr().err


@pytest.mark.parametrize('name, layers', [
    ('lenet', ['Conv2D', 'AvgPool2D', 'Conv2D', 'AvgPool2D', 'Dense', 'Dense', 'Dense']),
    ('lenet_first_edition',
     ['Conv2D', 'MaxPool2D', 'Conv2D', 'MaxPool2D', 'Dense', 'Dense', 'Dense']),
    ('lenet_bn', ['Conv2D', 'BatchNorm', 'Activation', 'MaxPool2D',
                  'Conv2D', 'BatchNorm', 'Activation', 'MaxPool2D',
                  'Dense', 'BatchNorm', 'Activation', 'Dense', 'BatchNorm', 'Activation',
                  'Dense']),
])
def test_the_lenets_are_the_books_plain_hybrid_sequential(name, layers):
    """The first network a student reads is the book's container, layer by layer
    (D2L 7.6 and 8.5): no subclass computing something else."""
    net = get_model(name)
    assert type(net) is mx.gluon.nn.HybridSequential
    assert [type(layer).__name__ for layer in net] == layers
