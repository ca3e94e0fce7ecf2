"""The assignments: one per chapter's block, each with public and hidden checks.

A student defines the assignment's names (say `Residual`) in a notebook made
from `template(name)`; its last cell runs the public checks. The grader runs
the public and the hidden checks (other sizes and options, so that an answer
fitted to the public ones fails). Each check builds the student's object and
the library's reference with the same arguments and compares them with
`checker.check_builder`: the references live in `d2lnets.models`, which the
template never imports.
"""
import json
from collections import namedtuple

from mxnet.gluon import nn

from ..models.densenet import DenseBlock, transition_block
from ..models.googlenet import Inception
from ..models.nin import nin_block
from ..models.resnet import Residual
from ..models.squeezenet import Fire
from ..models.vgg import vgg_block
from .checker import CheckResult, check_builder
from .limits import DEFAULT_TIMEOUT

Assignment = namedtuple('Assignment', 'name title section task skeleton kind checks')


class Check(namedtuple('Check', 'target args input_shape hidden reference points')):
    """Build `target(*args)` (the student's and the reference's) and compare
    them on a seeded input of `input_shape`; worth `points` in the gradebook."""

    @property
    def call(self):
        return f'{self.target}({", ".join(map(repr, self.args))})'

    @property
    def label(self):
        return f'{self.call} on {"x".join(map(str, self.input_shape))}'


def _concise_batch_norm(num_features, num_dims):
    """Gluon's own batch normalisation, the reference of the from-scratch one."""
    return nn.BatchNorm(in_channels=num_features)


def _function(signature):
    return f'def {signature}:\n    # your code here\n    raise NotImplementedError\n'


def _block(name, params):
    return (f'class {name}(nn.Block):\n    def __init__(self, {params}, **kwargs):\n'
            f'        super().__init__(**kwargs)\n        # your layers here\n\n'
            f'    def forward(self, X):\n        # your computation here\n'
            f'        raise NotImplementedError\n')


PUBLIC_POINTS, HIDDEN_POINTS = 1, 2   # a hidden check weighs more: it tests understanding


def _checks(reference, target, public, hidden):
    return tuple([Check(target, args, shape, False, reference, PUBLIC_POINTS)
                  for args, shape in public]
                 + [Check(target, args, shape, True, reference, HIDDEN_POINTS)
                    for args, shape in hidden])


ASSIGNMENTS = {a.name: a for a in (
    Assignment(
        'vgg_block', 'Write vgg_block', 'D2L 8.2 (VGG)',
        '`vgg_block(num_convs, num_channels)` returns `num_convs` 3x3 convolutions of '
        '`num_channels` channels, each followed by ReLU and keeping height and width, then '
        'a 2x2 max pooling with stride 2.',
        _function('vgg_block(num_convs, num_channels)'), 'block',
        _checks(vgg_block, 'vgg_block',
                [((1, 8), (1, 3, 16, 16)), ((2, 16), (2, 4, 12, 12))],
                [((3, 6), (1, 2, 8, 8)), ((2, 5), (2, 3, 10, 10))])),
    Assignment(
        'nin_block', 'Write nin_block', 'D2L 8.3 (NiN)',
        '`nin_block(num_channels, kernel_size, strides, padding)` returns a convolution '
        'with these settings and two 1x1 convolutions, all of `num_channels` channels and '
        'each followed by ReLU.',
        _function('nin_block(num_channels, kernel_size, strides, padding)'), 'block',
        _checks(nin_block, 'nin_block',
                [((8, 3, 1, 1), (1, 3, 12, 12)), ((6, 5, 2, 2), (2, 2, 11, 11))],
                [((4, 11, 4, 0), (1, 1, 48, 48)), ((5, 1, 1, 0), (2, 3, 5, 5))])),
    Assignment(
        'inception', 'Write the Inception block', 'D2L 8.4 (GoogLeNet)',
        '`Inception(c1, c2, c3, c4)` runs four paths on its input and concatenates their '
        'outputs on the channel axis, in this order: a 1x1 convolution of c1 channels; a '
        '1x1 convolution of c2[0] then a 3x3 of c2[1] (padding 1); a 1x1 of c3[0] then a '
        '5x5 of c3[1] (padding 2); a 3x3 max pooling (stride 1, padding 1) then a 1x1 '
        'convolution of c4. Every convolution is followed by ReLU.',
        _block('Inception', 'c1, c2, c3, c4'), 'block',
        _checks(Inception, 'Inception',
                [((4, (3, 6), (2, 5), 3), (1, 4, 8, 8))],
                [((2, (2, 3), (1, 2), 4), (2, 3, 6, 6)), ((1, (1, 1), (1, 1), 1),
                                                          (1, 2, 3, 3))])),
    Assignment(
        'residual', 'Write the Residual block', 'D2L 8.6 (ResNet)',
        '`Residual(num_channels, use_1x1conv=False, strides=1)`: a 3x3 convolution '
        '(padding 1, stride `strides`), batch norm, ReLU, a 3x3 convolution (padding 1), '
        'batch norm; the input is added (through a 1x1 convolution of stride `strides` '
        'when `use_1x1conv`), then ReLU.',
        _block('Residual', 'num_channels, use_1x1conv=False, strides=1'), 'block',
        _checks(Residual, 'Residual',
                [((3,), (2, 3, 6, 6)), ((6, True, 2), (2, 3, 8, 8))],
                [((4, True, 1), (2, 2, 5, 5)), ((5, True, 2), (2, 5, 7, 7)),
                 ((2,), (1, 2, 3, 3))])),
    Assignment(
        'densenet', 'Write DenseBlock and transition_block', 'D2L 8.7 (DenseNet)',
        '`DenseBlock(num_convs, num_channels)` holds `num_convs` convolution blocks (batch '
        'norm, ReLU, 3x3 convolution of `num_channels`, padding 1); each one\'s output is '
        'concatenated after its input on the channel axis, and the result feeds the next. '
        '`transition_block(num_channels)` is batch norm, ReLU, a 1x1 convolution of '
        '`num_channels`, then 2x2 average pooling with stride 2.',
        _block('DenseBlock', 'num_convs, num_channels') + '\n\n'
        + _function('transition_block(num_channels)'), 'block',
        _checks(DenseBlock, 'DenseBlock', [((2, 4), (2, 3, 6, 6))], [((3, 2), (2, 5, 4, 4))])
        + _checks(transition_block, 'transition_block', [((5,), (2, 8, 6, 6))],
                  [((3,), (2, 6, 5, 5))])),
    Assignment(
        'fire', 'Write the Fire module', 'SqueezeNet (Iandola et al., 2016)',
        '`Fire(squeeze, expand)`: a 1x1 convolution of `squeeze` channels with ReLU, then '
        'two convolutions side by side on its output, a 1x1 and a 3x3 (padding 1), each of '
        '`expand` channels with ReLU, concatenated on the channel axis (the 1x1 first).',
        _block('Fire', 'squeeze, expand'), 'block',
        _checks(Fire, 'Fire', [((2, 4), (1, 6, 7, 7))], [((3, 5), (2, 4, 5, 5))])),
    Assignment(
        'batch_norm', 'Batch normalisation from scratch', 'D2L 8.5 (batch normalisation)',
        '`BatchNorm(num_features, num_dims)` (`num_dims` 2 after a dense layer, 4 after a '
        'convolution) has parameters gamma, beta, moving_mean and moving_var, registered in '
        'this order. In training (inside `autograd.record()`) it normalises with the '
        'batch\'s mean and (biased) variance per feature -- per channel for 4-D input -- '
        'and updates moving = 0.9 * moving + 0.1 * batch statistic; in prediction it '
        'normalises with the moving ones; eps is 1e-5. It must give the numbers '
        '`nn.BatchNorm` gives.',
        _block('BatchNorm', 'num_features, num_dims'), 'batch_norm',
        _checks(_concise_batch_norm, 'BatchNorm', [((3, 4), (4, 3, 5, 5))],
                [((5, 2), (8, 5)), ((2, 4), (3, 2, 4, 4))])),
)}


def get_assignment(name):
    """The assignment called `name`; ValueError listing the valid names otherwise."""
    if name not in ASSIGNMENTS:
        raise ValueError(f'unknown assignment {name!r}; valid: {", ".join(ASSIGNMENTS)}')
    return ASSIGNMENTS[name]


def run_check(check, kind, namespace, timeout=DEFAULT_TIMEOUT):
    """Run `check` on the student's definitions in `namespace` (e.g. `globals()`)."""
    student = namespace.get(check.target)
    if student is None:
        return CheckResult(False, f'no {check.target} defined: define it (with that name) '
                                  f'and run its cell first')
    return check_builder(student, check.reference, check.args, check.input_shape, kind,
                         timeout=timeout, what=check.call)


def run_public_checks(name, namespace, timeout=DEFAULT_TIMEOUT):
    """Run assignment `name`'s public checks on `namespace`, printing one line
    per check; return the `CheckResult`s."""
    assignment = get_assignment(name)
    results = []
    for check in (c for c in assignment.checks if not c.hidden):
        result = run_check(check, assignment.kind, namespace, timeout)
        print(f'{"PASS" if result.passed else "FAIL"} {check.label}: {result.message}')
        results.append(result)
    passed = sum(r.passed for r in results)
    print(f'{passed} of {len(results)} public checks pass'
          + ('; the teacher also runs hidden ones with other sizes' if passed else ''))
    return results


def template(name):
    """The student's notebook for assignment `name` (nbformat 4.5, as a dict,
    cells with ids): the task, a cell to write the answer in, and a cell
    running the public checks. It imports no reference."""
    a = get_assignment(name)
    cells = [
        _cell('markdown', f'# Assignment: {a.title}\n\n{a.section}. {a.task}\n\n'
                          f'Write your answer in the cell under "Your answer", keeping the '
                          f'names given, then run the cell under "Check": it runs the public '
                          f'checks and tells you the first place your answer goes wrong. Your '
                          f'teacher also runs hidden checks, with other sizes and options.'),
        _cell('code', 'import d2lnets  # noqa: F401  (first: it gives MXNet every core)\n'
                      'from mxnet import autograd, nd\nfrom mxnet.gluon import nn'),
        _cell('markdown', '## Your answer'),
        _cell('code', a.skeleton.rstrip('\n')),
        _cell('markdown', '## Check'),
        _cell('code', f'from d2lnets.classroom.assignments import run_public_checks\n\n'
                      f'run_public_checks({a.name!r}, globals())'),
    ]
    for number, cell in enumerate(cells, 1):
        cell['id'] = f'{a.name.replace("_", "-")}-{number}'   # nbformat 4.5 wants one
    return {'cells': cells, 'nbformat': 4, 'nbformat_minor': 5,
            'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python',
                                        'name': 'python3'},
                         'language_info': {'name': 'python'}}}


def _cell(kind, source):
    cell = {'cell_type': kind, 'metadata': {}, 'source': source}
    if kind == 'code':
        cell.update(execution_count=None, outputs=[])
    return cell


def write_template(name, path):
    """Write `template(name)` to `path` (.ipynb)."""
    with open(path, 'w') as f:
        json.dump(template(name), f, indent=1)
        f.write('\n')
