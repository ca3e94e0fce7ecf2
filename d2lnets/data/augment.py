"""Image augmentations for training on photos (D2L section 14.1) and the VGG
paper's own (Simonyan and Zisserman, 2015, arXiv:1409.1556, section 3.1):

- `random_resized_crop_flip`: the book's and the seed's ImageNet-style
  augmentation (random area and aspect crop, resized; horizontal flip);
- `ScaleJitter`: the paper's scale jittering, the shorter side rescaled to a
  random S in [S_min, S_max] = [256, 512], then a random 224 x 224 crop;
- `RGBShift`: the paper's random RGB colour shift, AlexNet's PCA lighting
  noise (Krizhevsky et al., 2012) with ImageNet's principal components.

Each takes a uint8 (H, W, 3) NDArray as `mx.image.imread` gives and returns a
float32 (3, size, size) tensor, normalized with ImageNet's mean and standard
deviation, the input a model-zoo network expects.
"""
import numpy as np
from mxnet import image, nd
from mxnet.gluon import nn
from mxnet.gluon.data.vision import transforms

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ScaleJitter(nn.Block):
    """Rescale so the shorter side is a random S in [smin, smax], then crop a
    random `size` x `size` patch (the paper's multi-scale training)."""

    def __init__(self, smin=256, smax=512, size=224, seed=None):
        super().__init__()
        if not size <= smin <= smax:
            raise ValueError(f'need crop size <= smin <= smax, got {size}, {smin}, {smax}')
        self.smin, self.smax, self.size = smin, smax, size
        self._rng = np.random.default_rng(seed)

    def forward(self, img):
        shorter = int(self._rng.integers(self.smin, self.smax + 1))
        img = image.resize_short(img, shorter)
        height, width = img.shape[:2]
        top = int(self._rng.integers(0, height - self.size + 1))
        left = int(self._rng.integers(0, width - self.size + 1))
        return img[top:top + self.size, left:left + self.size]


class RGBShift(nn.Block):
    """Add AlexNet's PCA colour noise: for each image, the principal components
    of ImageNet's RGB values times their eigenvalues times N(0, alpha)."""

    def __init__(self, alpha=0.1):
        super().__init__()
        self._lighting = transforms.RandomLighting(alpha)

    def forward(self, img):
        shifted = self._lighting(img.astype('float32'))
        return nd.clip(shifted, 0, 255)


def _finish(steps):
    return transforms.Compose(steps + [to_input()])


def to_input():
    """uint8 (H, W, 3), or a batch (N, H, W, 3), to a float32 tensor (3, H, W),
    or (N, 3, H, W), in [0, 1], normalized with ImageNet's mean and deviation."""
    return transforms.Compose([transforms.ToTensor(),
                               transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def random_resized_crop_flip(size=224):
    """Random resized crop and horizontal flip, then to a normalized tensor."""
    return _finish([transforms.RandomResizedCrop(size), transforms.RandomFlipLeftRight()])


def vgg_paper_train(smin=256, smax=512, size=224, alpha=0.1):
    """The VGG paper's training augmentation: scale jitter, flip, RGB shift."""
    return _finish([ScaleJitter(smin, smax, size), transforms.RandomFlipLeftRight(),
                    RGBShift(alpha)])


def evaluation(size=224, resize=256):
    """For validation: shorter side to `resize`, centre `size` crop, normalize."""
    return _finish([transforms.Resize(resize, keep_ratio=True),
                    transforms.CenterCrop(size)])
