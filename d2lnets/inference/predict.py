"""Print the top-k classes a fine-tuned network gives an image or a folder.

    python -m d2lnets.inference.predict --model vgg16 --params runs/finetune/best.params \\
        --classes data/flowers-split/classes.txt photo.jpg more-photos/

Each image is resized (shorter side 256), centre-cropped to 224 and
normalized as in validation, and printed as
`photo.jpg: daisy 0.912, rose 0.051, tulip 0.020`.
"""
import os
import sys

import mxnet as mx
from mxnet import nd

from .._args import OneLineParser, positive_int
from .._messages import first_line
from ..data.augment import evaluation
from ..data.image_folder import IMAGE_EXTENSIONS, ImageFolderError, read_class_index, read_image
from ..training.finetune import initialized_model
from ..models import UnknownModelError


def image_paths(paths):
    """The image files named, and those inside the folders named (sorted).

    Raises `ValueError` for a path that does not exist, and when there is
    no image at all to predict.
    """
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(d, f) for d, _, files in os.walk(path) for f in files
                            if f.lower().endswith(IMAGE_EXTENSIONS))
        elif os.path.exists(path):
            found.append(path)
        else:
            raise ValueError(f'{path} does not exist; give image files or folders of images')
    if not found:
        raise ValueError(f'no image to predict in {", ".join(paths)}: folders are searched '
                         f'for {", ".join(IMAGE_EXTENSIONS)} files')
    return found


def load_network(model, params, num_classes, ctx):
    if not os.path.isfile(params):
        raise ValueError(f'--params {params} is not a file; give the .params file that '
                         f'chapters.finetune wrote (OUT/best.params)')
    net = initialized_model(model, ctx, num_classes=num_classes)
    try:
        net.load_parameters(params, ctx=ctx)
    except (AssertionError, mx.base.MXNetError, OSError) as err:
        raise ValueError(f'{params} does not fit {model} with {num_classes} classes '
                         f'({first_line(err)})') from None
    return net


def top_k(net, path, classes, k, ctx):
    """[(class name, probability)] of the `k` most probable classes of an image."""
    x = evaluation()(read_image(path)).expand_dims(axis=0).as_in_context(ctx)
    probs = nd.softmax(net(x))[0].asnumpy()
    order = probs.argsort()[::-1][:k]
    return [(classes[i], float(probs[i])) for i in order]


def main(argv=None):
    parser = OneLineParser(prog='python -m d2lnets.inference.predict',
                           description='Top-k classes of images.')
    parser.add_argument('paths', nargs='+', help='image files or folders of images')
    parser.add_argument('--model', required=True, help='registry name, e.g. vgg16')
    parser.add_argument('--params', required=True, help='the fine-tuned .params file')
    parser.add_argument('--classes', required=True, help='class index file (classes.txt)')
    parser.add_argument('--top', type=positive_int, default=5,
                        help='classes to print (default: 5)')
    args = parser.parse_args(argv)
    ctx = mx.cpu()
    try:
        paths = image_paths(args.paths)
        classes = read_class_index(args.classes)
        net = load_network(args.model, args.params, len(classes), ctx)
    except (ImageFolderError, UnknownModelError, ValueError) as err:
        parser.exit(2, f'{parser.prog}: error: {err}\n')
    failed = 0
    for path in paths:
        try:
            ranked = top_k(net, path, classes, min(args.top, len(classes)), ctx)
        except ImageFolderError as err:
            print(f'{parser.prog}: {err}', file=sys.stderr)
            failed += 1
            continue
        print(f'{path}: ' + ', '.join(f'{name} {p:.3f}' for name, p in ranked))
    if failed:
        sys.exit(1)


if __name__ == '__main__':
    main()
