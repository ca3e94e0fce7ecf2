"""The networks the benchmark trains, at the book's input size and batch size.

Importing this module does not set d2lnets' thread settings when MXNet is
already loaded, so the book's contender (`bench.book_worker`) can import it
after MXNet and keep the environment a user of the book has.
"""
from d2lnets.models.alexnet import alexnet_book
from d2lnets.models.batchnorm import lenet_bn
from d2lnets.models.densenet import densenet_book
from d2lnets.models.googlenet import googlenet
from d2lnets.models.lenet import lenet_first_edition
from d2lnets.models.nin import nin
from d2lnets.models.resnet import resnet18_book
from d2lnets.models.squeezenet import squeezenet
from d2lnets.models.vgg import CONV_ARCHS, narrow, vgg

# chapter: (builder, input side, batch size, in the book), as the chapters' book
# settings. SqueezeNet is not in the book: AlexNet's chapter's setting.
NETWORKS = {
    'lenet': (lenet_first_edition, 28, 256, True),
    'batchnorm': (lenet_bn, 28, 256, True),
    'alexnet': (alexnet_book, 224, 128, True),
    'vgg': (lambda: vgg(narrow(CONV_ARCHS['A'], 4)), 224, 128, True),
    'nin': (nin, 224, 128, True),
    'googlenet': (googlenet, 96, 128, True),
    'resnet': (resnet18_book, 96, 256, True),
    'densenet': (densenet_book, 96, 256, True),
    'squeezenet': (lambda: squeezenet('1.1', num_classes=10), 224, 128, False),
}
LEARNING_RATE = 0.01
