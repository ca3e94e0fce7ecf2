"""Data: Fashion-MNIST and CIFAR-10 found, verified and served as batches,
folders of photos, the IDX format, and augmentations.

`batches` (the book's `load_data_fashion_mnist`), `fashion_mnist` and
`cifar10` (finding, checking and downloading the files), `sources` (where
data sets live), `idx`, `image_folder`, `augment`. Imports nothing above it
but `d2lnets._messages`.
"""
from .batches import ImageBatches, load_data_cifar10, load_data_fashion_mnist
from .sources import DataNotFoundError

__all__ = ['ImageBatches', 'load_data_fashion_mnist', 'load_data_cifar10', 'DataNotFoundError']
