"""Every assignment's reference passes its own public and hidden checks;
typical wrong answers fail with the right message; the student templates
are the generated ones, stored without outputs, and import no reference."""
import contextlib
import io
import json
import os
import time
import warnings

import nbformat
import pytest
from mxnet import autograd, nd
from mxnet.gluon import nn

from d2lnets.classroom.assignments import (ASSIGNMENTS, get_assignment, run_check,
                                           run_public_checks, template)
from d2lnets.classroom.limits import run_limited
from d2lnets.models.batchnorm import BatchNorm
from d2lnets.models.densenet import DenseBlock, conv_block, transition_block
from d2lnets.models.googlenet import Inception
from d2lnets.models.nin import nin_block
from d2lnets.models.resnet import Residual
from d2lnets.models.squeezenet import Fire
from d2lnets.models.vgg import vgg_block

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         'notebooks', 'assignments')
REFERENCES = {'vgg_block': vgg_block, 'nin_block': nin_block, 'Inception': Inception,
              'Residual': Residual, 'DenseBlock': DenseBlock,
              'transition_block': transition_block, 'Fire': Fire, 'BatchNorm': BatchNorm}


def results(name, namespace):
    assignment = get_assignment(name)
    return [run_check(check, assignment.kind, namespace) for check in assignment.checks]


@pytest.mark.parametrize('name', sorted(ASSIGNMENTS))
def test_the_reference_passes_every_check(name):
    checks = get_assignment(name).checks
    assert any(c.hidden for c in checks) and any(not c.hidden for c in checks)
    for result in results(name, REFERENCES):
        assert result.passed, result.message


class BookDenseBlock(nn.HybridBlock):
    """The book's DenseBlock, as a student writes it: a list of conv blocks,
    each output concatenated after its input (the library's is built
    differently, as the model zoo's: steps of identity and conv block)."""

    def __init__(self, num_convs, num_channels, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.net = nn.HybridSequential()
            for _ in range(num_convs):
                self.net.add(conv_block(num_channels))

    def hybrid_forward(self, F, X):
        for blk in self.net:
            X = F.concat(X, blk(X), dim=1)
        return X


class ConcatFirst(BookDenseBlock):
    """The book's DenseBlock putting each new output before its input."""

    def hybrid_forward(self, F, X):
        for blk in self.net:
            X = F.concat(blk(X), X, dim=1)
        return X


def test_the_books_dense_block_passes():
    assert all(r.passed for r in results('densenet', dict(REFERENCES,
                                                          DenseBlock=BookDenseBlock)))


class UnbiasedBatchNorm(BatchNorm):
    """Batch norm that keeps the unbiased variance in its moving average."""

    def forward(self, X):
        if not autograd.is_training():
            return super().forward(X)
        axes = (0,) if X.ndim == 2 else (0, 2, 3)
        mean = X.mean(axis=axes, keepdims=True)
        var = ((X - mean) ** 2).sum(axis=axes, keepdims=True) / (X.size / X.shape[1] - 1)
        X_hat = (X - mean) / nd.sqrt(((X - mean) ** 2).mean(axis=axes, keepdims=True) + self.eps)
        self.moving_mean.set_data(0.9 * self.moving_mean.data() + 0.1 * mean)
        self.moving_var.set_data(0.9 * self.moving_var.data() + 0.1 * var)
        return self.gamma.data() * X_hat + self.beta.data()


class StudentFire(nn.HybridBlock):
    """A Fire module as a student writes it: squeeze, then the 1x1 and 3x3
    expand paths concatenated (in another `order`, or with another
    activation in the squeeze layer, when asked)."""

    def __init__(self, squeeze, expand, squeeze_act='relu', order=(0, 1), **kwargs):
        super().__init__(**kwargs)
        self.order = order
        with self.name_scope():
            self.squeeze = nn.Conv2D(squeeze, kernel_size=1, activation=squeeze_act)
            self.expand1 = nn.Conv2D(expand, kernel_size=1, activation='relu')
            self.expand3 = nn.Conv2D(expand, kernel_size=3, padding=1, activation='relu')

    def hybrid_forward(self, F, x):
        squeezed = self.squeeze(x)
        paths = (self.expand1(squeezed), self.expand3(squeezed))
        return F.concat(*(paths[i] for i in self.order), dim=1)


def SwappedFire(squeeze, expand):
    return StudentFire(squeeze, expand, order=(1, 0))


def sigmoid_fire(squeeze, expand):
    return StudentFire(squeeze, expand, squeeze_act='sigmoid')


def test_a_fire_module_written_another_way_passes():
    assert all(r.passed for r in results('fire', dict(REFERENCES, Fire=StudentFire)))


def no_relu_transition(num_channels):
    blk = nn.HybridSequential()
    blk.add(nn.BatchNorm(), nn.Conv2D(num_channels, kernel_size=1),
            nn.AvgPool2D(pool_size=2, strides=2))
    return blk


def test_wrong_answers_fail_with_the_right_message():
    dense = results('densenet', dict(REFERENCES, DenseBlock=ConcatFirst,
                                     transition_block=no_relu_transition))
    assert dense[0].message == ('layer 3 (batch norm): right shape, wrong numbers: check its '
                                'settings and what you feed it')   # the 2nd conv block's input
    assert dense[2].message == 'layer 1 (batch norm): expected relu activation, yours has none'
    fire = results('fire', dict(REFERENCES, Fire=sigmoid_fire))
    assert fire[0].message == 'layer 1 (convolution): expected relu activation, yours has sigmoid'
    swapped = results('fire', dict(REFERENCES, Fire=SwappedFire))
    assert swapped[0].message == ('your output has the right channels in another order: check '
                                  'the order in which you concatenate the paths')
    norm = results('batch_norm', dict(REFERENCES, BatchNorm=UnbiasedBatchNorm))
    assert norm[0].message.startswith('moving variance after a training step: your numbers '
                                      'differ from the expected ones by up to ')
    missing = results('residual', {})
    assert missing[0].message == 'no Residual defined: define it (with that name) and run its ' \
                                 'cell first'


def test_equivalent_answers_pass():
    def separate_relus(num_channels, kernel_size, strides, padding):
        blk = nn.Sequential()             # imperative, activations as their own blocks
        for channels, k, s, p in ((num_channels, kernel_size, strides, padding),
                                  (num_channels, 1, 1, 0), (num_channels, 1, 1, 0)):
            blk.add(nn.Conv2D(channels, k, s, p), nn.Activation('relu'))
        return blk

    class Dense(nn.Block):               # another class name, nn.Block, a list of blocks
        def __init__(self, num_convs, num_channels, **kwargs):
            super().__init__(**kwargs)
            self.blocks = nn.Sequential()
            for _ in range(num_convs):
                self.blocks.add(conv_block(num_channels))

        def forward(self, X):
            for blk in self.blocks:
                X = nd.concat(X, blk(X), dim=1)
            return X

    for result in results('nin_block', {'nin_block': separate_relus}):
        assert result.passed, result.message
    for result in results('densenet', dict(REFERENCES, DenseBlock=Dense)):
        assert result.passed, result.message


@pytest.mark.parametrize('name', sorted(ASSIGNMENTS))
def test_the_stored_template_is_the_generated_one(name):
    path = os.path.join(TEMPLATES, f'{name}.ipynb')
    with open(path) as f:
        stored = json.load(f)
    assert stored == template(name), f'regenerate with write_template({name!r}, {path!r})'
    code = '\n'.join(c['source'] for c in stored['cells'] if c['cell_type'] == 'code')
    assert 'd2lnets.models' not in code and 'from d2lnets import' not in code
    for cell in stored['cells']:
        if cell['cell_type'] == 'code':
            assert cell['outputs'] == [] and cell['execution_count'] is None
    with warnings.catch_warnings():
        warnings.simplefilter('error')      # nbformat warns about cells without ids
        nbformat.validate(nbformat.read(path, as_version=4))


def printed_by(source, namespace):
    """What running the cell `source` in `namespace` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(source, namespace)  # noqa: S102
    return out.getvalue()


def test_the_templates_check_cell_runs_inside_a_time_limited_cell():
    # as the grader (and any teacher's tool) runs a cell: in run_limited's child,
    # whose own checks start children of their own
    check_cell = template('vgg_block')['cells'][-1]['source']
    printed = run_limited(printed_by, check_cell, {'vgg_block': vgg_block}, timeout=60)
    assert printed.splitlines()[-1] == ('2 of 2 public checks pass; the teacher also runs '
                                        'hidden ones with other sizes')


def test_an_unfinished_template_runs_its_checks_and_says_what_is_missing(capsys):
    namespace = {'__name__': '__main__'}
    for cell in template('residual')['cells']:
        if cell['cell_type'] == 'code':
            exec(cell['source'], namespace)  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'FAIL Residual(3) on 2x3x6x6: Residual(3) raised NotImplementedError'
    assert out[-1] == '0 of 2 public checks pass'
    results = run_public_checks('vgg_block', {'vgg_block': vgg_block})
    assert all(r.passed for r in results)
    assert capsys.readouterr().out.splitlines()[-1] == (
        '2 of 2 public checks pass; the teacher also runs hidden ones with other sizes')


def test_an_unknown_assignment_is_refused_with_the_valid_names():
    with pytest.raises(ValueError) as info:
        get_assignment('resnet')
    assert str(info.value) == ("unknown assignment 'resnet'; valid: vgg_block, nin_block, "
                               "inception, residual, densenet, fire, batch_norm")


def test_a_check_is_named_by_its_call_and_its_input():
    check = get_assignment('inception').checks[0]
    assert check.call == 'Inception(4, (3, 6), (2, 5), 3)'
    assert check.label == 'Inception(4, (3, 6), (2, 5), 3) on 1x4x8x8'
    assert [(c.hidden, c.points) for c in get_assignment('residual').checks] == [
        (False, 1), (False, 1), (True, 2), (True, 2), (True, 2)]


@pytest.mark.parametrize('name', ['fire', 'batch_norm'])
def test_write_template_writes_the_stored_notebook_byte_for_byte(name, tmp_path):
    from d2lnets.classroom.assignments import write_template
    write_template(name, tmp_path / f'{name}.ipynb')
    with open(os.path.join(TEMPLATES, f'{name}.ipynb'), 'rb') as f:
        assert (tmp_path / f'{name}.ipynb').read_bytes() == f.read()


def test_the_public_checks_print_each_verdict_and_the_count(capsys):
    assert [r.passed for r in run_public_checks('vgg_block', {'vgg_block': vgg_block})] == [
        True, True]
    assert capsys.readouterr().out.splitlines() == [
        'PASS vgg_block(1, 8) on 1x3x16x16: right: the same output as the reference on a '
        'seeded input (1x8x8x8, through 2 layers)',
        'PASS vgg_block(2, 16) on 2x4x12x12: right: the same output as the reference on a '
        'seeded input (2x16x6x6, through 3 layers)',
        '2 of 2 public checks pass; the teacher also runs hidden ones with other sizes']
    missing = run_public_checks('residual', {})
    assert [r.passed for r in missing] == [False, False]
    assert capsys.readouterr().out.splitlines() == [
        'FAIL Residual(3) on 2x3x6x6: no Residual defined: define it (with that name) and run '
        'its cell first',
        'FAIL Residual(6, True, 2) on 2x3x8x8: no Residual defined: define it (with that name) '
        'and run its cell first',
        '0 of 2 public checks pass']


def test_the_public_checks_stop_student_code_at_the_time_limit_given(capsys):
    start = time.monotonic()

    def vgg_block(num_convs, num_channels):
        while time.monotonic() < start + 6:   # ends, so that a run without the limit fails
            pass

    results = run_public_checks('vgg_block', {'vgg_block': vgg_block}, timeout=0.5)
    assert time.monotonic() - start < 5
    assert [r.passed for r in results] == [False, False]
    assert capsys.readouterr().out.splitlines() == [
        'FAIL vgg_block(1, 8) on 1x3x16x16: vgg_block(1, 8) did not finish within 0.5 s: is '
        'there a loop that never ends?',
        'FAIL vgg_block(2, 16) on 2x4x12x12: vgg_block(2, 16) did not finish within 0.5 s: is '
        'there a loop that never ends?',
        '0 of 2 public checks pass']
