"""Fault injection for runs (docs/reliability.md): kills at every step of a
checkpoint save, reruns and concurrent runs into one --out, resumes with
changed options, divergence hidden behind a finite loss, damaged checkpoints
and a full disk. Each case checks the exit code, a single line without a
traceback, and the files on disk before and after."""
import errno
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init, nd
from mxnet.gluon import nn

from chapters import finetune as finetune_chapter
from chapters import lenet, vgg
from d2lnets.cli import run_chapter_main
from d2lnets.training import checkpoint as checkpoint_module
from d2lnets.training.checkpoint import Checkpoint, CheckpointError
from d2lnets.training import loop
from d2lnets.training.loop import NetworkDied, TrainingDiverged, train_ch5
from d2lnets.training.outlock import OutputLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = os.path.join(ROOT, 'tests', 'fault_child.py')
CTX = mx.cpu()
LENET = ['--ctx', 'cpu', '--num-train', '512', '--num-test', '100', '--batch-size', '128']
SAVE_STEPS = ['_write_parameters', '_write_states', '_write_history', '_write_manifest',
              '_retire', '_install', '_drop_retired']


def checksums(folder):
    """{relative path: sha256} of every file under `folder`."""
    sums = {}
    for parent, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(parent, name)
            sums[os.path.relpath(path, folder)] = hashlib.sha256(
                open(path, 'rb').read()).hexdigest()
    return sums


@pytest.fixture(scope='module')
def one_epoch(tmp_path_factory):
    """A one-epoch LeNet run (LENET); tests copy it rather than train again."""
    out = tmp_path_factory.mktemp('template') / 'run'
    run_chapter_main(lambda: lenet.main(LENET + ['--epochs', '1', '--out', str(out)]), 'lenet')
    return out


@pytest.fixture
def lenet_out(one_epoch, tmp_path):
    """A copy of `one_epoch` in this test's folder."""
    out = tmp_path / 'run'
    shutil.copytree(one_epoch, out)
    return out


def run_main(main, argv, prog, capsys):
    """Run a chapter's main as `python -m` would (run_chapter_main); return
    (exit code, stdout, stderr)."""
    code = 0
    try:
        run_chapter_main(lambda: main(argv), prog)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    assert 'Traceback' not in err
    assert err.count('\n') == 1, err
    return err.strip()


def epoch_lines(stdout):
    """The epoch lines without their time and examples/sec, which vary."""
    return [re.sub(r', time .*', '', line) for line in stdout.splitlines()
            if line.startswith('epoch ')]


# -- the checkpoint as one unit ------------------------------------------------------------

def toy_run(tmp_path, epochs, lr=0.1, net_seed=0, checkpoint=None, resume=False,
            layers_before=0, features=5, **kwargs):
    """A tiny net trained on fixed data of `features` columns; its layers are
    dense0 and dense1 (after `layers_before` other Dense layers: the Trainer
    orders parameters by name)."""
    mx.random.seed(net_seed)
    with mx.name.NameManager():
        for _ in range(layers_before):
            nn.Dense(1)
        net = nn.HybridSequential()
        net.add(nn.Dense(8, activation='relu'), nn.Dense(3))
    net.initialize(init.Xavier(), ctx=CTX)
    rng = np.random.default_rng(0)
    data = [(nd.array(rng.normal(size=(8, features))),
             nd.array(rng.integers(0, 3, 8), dtype='float32')) for _ in range(3)]
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr, 'momentum': 0.9})
    lines = []
    history = train_ch5(net, data, data, 8, trainer, CTX, epochs, checkpoint=checkpoint,
                        resume=resume, log=lines.append, **kwargs)
    return net, history, lines


def params_of(net):
    return {k.split('_', 1)[1]: v.data().asnumpy() for k, v in net.collect_params().items()}


def test_optimizer_state_that_pairs_with_other_parameters_is_one_line(tmp_path):
    """Layers numbered dense9, dense10 sort the other way round than dense0, dense1:
    the momentum saved for one would be applied to the other."""
    ckpt = Checkpoint(str(tmp_path / 'ckpt'))
    toy_run(tmp_path, 1, checkpoint=ckpt)
    with pytest.raises(CheckpointError, match='does not fit this trainer.s parameters'):
        toy_run(tmp_path, 2, checkpoint=ckpt, resume=True, layers_before=9)


class Killed(BaseException):
    """Stands for SIGKILL: no `except Exception` or cleanup catches it."""


@pytest.mark.parametrize('step', SAVE_STEPS)
def test_a_kill_at_any_step_of_a_save_leaves_one_whole_epoch(tmp_path, monkeypatch, step):
    """Epoch 2's save stops dead after `step`: resuming finds epoch 1 or epoch 2,
    each with its own parameters, never a mix; the next save tidies up."""
    ckpt_dir = str(tmp_path / 'ckpt')
    after_one, _, _ = toy_run(tmp_path, 1)
    after_two, _, _ = toy_run(tmp_path, 2)
    original = getattr(checkpoint_module, step)
    calls = []

    def then_die(*args):
        calls.append(step)
        original(*args)
        if len(calls) == 2:
            raise Killed
    monkeypatch.setattr(checkpoint_module, step, then_die)
    with pytest.raises(Killed):
        toy_run(tmp_path, 3, checkpoint=Checkpoint(ckpt_dir))
    monkeypatch.undo()

    survivor = Checkpoint(ckpt_dir)
    expected = 1 if SAVE_STEPS.index(step) <= SAVE_STEPS.index('_write_manifest') else 2
    assert survivor.epochs_saved() == expected
    net, history, lines = toy_run(tmp_path, expected, net_seed=5, checkpoint=survivor,
                                  resume=True)
    assert lines[0] == f'resuming after epoch {expected} from {os.path.normpath(ckpt_dir)}'
    reference = params_of(after_one if expected == 1 else after_two)
    for name, value in params_of(net).items():
        np.testing.assert_array_equal(value, reference[name])
    toy_run(tmp_path, expected + 1, net_seed=5, checkpoint=survivor, resume=True)
    assert sorted(os.listdir(tmp_path)) == ['ckpt']  # nothing half-written left beside it


def test_a_real_sigkill_mid_save_then_resume_prints_the_uninterrupted_lines(tmp_path):
    """SIGKILL between retiring epoch 1's folder and installing epoch 2's (no
    checkpoint/ on disk at that instant); --resume then finds epoch 2 and the
    run's epoch lines equal an uninterrupted run's with the same seed."""
    def child(fault, out, *extra):
        return subprocess.run([sys.executable, CHILD, fault, 'lenet', *LENET, '--no-pictures',
                               '--out', str(out), *extra], cwd=str(tmp_path),
                              capture_output=True, text=True,
                              timeout=600, env={**os.environ, 'PYTHONPATH': ROOT})
    whole = child('none', tmp_path / 'whole', '--epochs', '3')
    assert whole.returncode == 0, whole.stderr
    killed = child('kill:_retire:2', tmp_path / 'cut', '--epochs', '3')
    assert killed.returncode == -9
    assert not (tmp_path / 'cut' / 'checkpoint').exists()
    resumed = child('none', tmp_path / 'cut', '--epochs', '3', '--resume')
    assert resumed.returncode == 0, resumed.stderr
    assert 'resuming after epoch 2 from' in resumed.stdout
    assert epoch_lines(killed.stdout) + epoch_lines(resumed.stdout) == epoch_lines(whole.stdout)
    assert epoch_lines(resumed.stdout)[0].startswith('epoch 3, loss ')


@pytest.mark.slow
@pytest.mark.parametrize('fault', ['kill:step:6'] + [f'kill:{step}:2' for step in SAVE_STEPS])
def test_every_real_sigkill_resumes_to_the_uninterrupted_history(tmp_path, fault):
    def child(fault, out, *extra):
        return subprocess.run([sys.executable, CHILD, fault, 'lenet', *LENET, '--no-pictures',
                               '--out', str(out), '--epochs', '3', *extra], cwd=str(tmp_path),
                              capture_output=True,
                              text=True, timeout=600, env={**os.environ, 'PYTHONPATH': ROOT})
    whole = child('none', tmp_path / 'whole')
    killed = child(fault, tmp_path / 'cut')
    assert killed.returncode == -9
    resumed = child('none', tmp_path / 'cut', '--resume')
    assert resumed.returncode == 0, resumed.stderr
    assert epoch_lines(resumed.stdout) == epoch_lines(whole.stdout)[-len(
        epoch_lines(resumed.stdout)):]
    full = [json.load(open(tmp_path / run / 'history.json'))['epochs'] for run in ('whole', 'cut')]
    drop = ('time', 'examples_per_sec')
    assert [{k: v for k, v in e.items() if k not in drop} for e in full[0]] == \
        [{k: v for k, v in e.items() if k not in drop} for e in full[1]]


# -- nothing lost between runs --------------------------------------------------------------

def test_a_fresh_run_keeps_every_earlier_run(lenet_out, capsys):
    out = lenet_out
    argv = LENET + ['--epochs', '1', '--out', str(out)]
    first = checksums(out)
    code, _, err = run_main(lenet.main, argv, 'lenet', capsys)
    assert code == 0, err
    assert checksums(out / 'earlier' / '1') == {k: v for k, v in first.items() if k != '.lock'}
    assert {'checkpoint/model.params', 'history.json', 'curves.png'} <= set(first)
    first = checksums(out / 'earlier' / '1')
    code, stdout, _ = run_main(lenet.main, argv, 'lenet', capsys)
    assert code == 0
    assert re.search(r'keeping the earlier run \(checkpoint, history.json, curves.png, '
                     r'architecture.png, .*\) in ' + re.escape(str(out / 'earlier' / '2')), stdout)
    assert checksums(out / 'earlier' / '1') == first
    assert sorted(os.listdir(out / 'earlier')) == ['1', '2']


def test_a_second_run_into_the_same_out_is_refused(lenet_out, capsys):
    out = lenet_out
    before = checksums(out)
    with OutputLock(str(out)):
        code, _, err = run_main(lenet.main, LENET + ['--epochs', '1', '--out', str(out)],
                                'lenet', capsys)
    assert code == 1
    assert one_line(err) == (f'lenet: error: {out} is in use by another run (pid {os.getpid()}); '
                             f'wait for it to finish or pass another --out')
    assert checksums(out) == {**before, '.lock': checksums(out)['.lock']}


def test_two_real_processes_cannot_share_an_out(tmp_path):
    """The lock holds across processes and goes with its holder."""
    out = tmp_path / 'run'
    holder = subprocess.Popen([sys.executable, '-c', 'import sys; from d2lnets.training.outlock '
                               'import OutputLock\nwith OutputLock(sys.argv[1]):\n'
                               '    print("locked", flush=True); sys.stdin.read()', str(out)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, 'PYTHONPATH': ROOT})
    assert holder.stdout.readline() == 'locked\n'
    with pytest.raises(Exception, match=f'in use by another run \\(pid {holder.pid}\\)'):
        with OutputLock(str(out)):
            pass
    holder.kill()
    holder.wait()
    with OutputLock(str(out)):  # a killed holder leaves no stale lock
        pass


# -- honest resume --------------------------------------------------------------------------

def test_resume_applies_a_new_learning_rate_and_records_it(tmp_path):
    """Stopped after epoch 1 and resumed at lr 0.5: the parameters equal those
    of one run whose rate is set to 0.5 after epoch 1 (momentum kept), and
    differ from a run that stays at 0.1."""
    checkpoint = Checkpoint(str(tmp_path / 'ckpt'))
    toy_run(tmp_path, 1, lr=0.1, checkpoint=checkpoint)
    net, history, lines = toy_run(tmp_path, 2, lr=0.5, net_seed=3, checkpoint=checkpoint,
                                  resume=True)
    assert lines[1] == 'learning rate 0.5 from epoch 2 on (the checkpoint had 0.1)'
    assert history.column('lr') == [0.1, 0.5]
    assert json.load(open(tmp_path / 'ckpt' / 'history.json'))['epochs'][1]['lr'] == 0.5

    def faster_after_epoch_1(history):
        rate.set_learning_rate(0.5)
    rate = None
    original = gluon.Trainer.__init__

    def keep(self, *args, **kwargs):
        nonlocal rate
        original(self, *args, **kwargs)
        rate = self
    gluon.Trainer.__init__ = keep
    try:
        uninterrupted, _, _ = toy_run(tmp_path, 2, lr=0.1, on_epoch=faster_after_epoch_1)
    finally:
        gluon.Trainer.__init__ = original
    same_rate, _, _ = toy_run(tmp_path, 2, lr=0.1)
    for name, value in params_of(net).items():
        np.testing.assert_allclose(value, params_of(uninterrupted)[name], rtol=1e-6, atol=1e-7)
        assert not np.allclose(value, params_of(same_rate)[name])


@pytest.mark.parametrize('change, message', [
    (['--edition', 'later'], '--edition later differs from the run checkpointed in {ckpt}, '
                             'which had --edition first; resume with the same value, or start '
                             'afresh without --resume'),
    (['--batch-size', '64'], '--batch-size 64 differs from the run checkpointed in {ckpt}, '
                             'which had --batch-size 128'),
    (['--num-train', '256'], '--num-train 256 differs'),
    (['--seed', '1'], '--seed 1 differs'),
])
def test_resume_refuses_a_changed_option_by_name(lenet_out, capsys, change, message):
    out = lenet_out
    argv = LENET + ['--out', str(out)]
    before = checksums(out / 'checkpoint')
    code, _, err = run_main(lenet.main, argv + ['--epochs', '2', '--resume'] + change,
                            'lenet', capsys)
    assert code == 1
    assert one_line(err).startswith('lenet: error: ' + message.format(ckpt=out / 'checkpoint'))
    assert checksums(out / 'checkpoint') == before


def test_resume_takes_every_option_not_given_from_the_checkpoint(tmp_path, capsys):
    """Started at --lr 0.3 on a subset, resumed with none of its options: the
    run goes on at 0.3 on the same subset (an omitted --lr used to fall back to
    the book's 0.9, an omitted --num-train to be refused); a --lr given is applied."""
    out = tmp_path / 'run'
    code, _, err = run_main(lenet.main, LENET + ['--lr', '0.3', '--seed', '7', '--epochs', '1',
                                                 '--no-pictures', '--out', str(out)],
                            'lenet', capsys)
    assert code == 0, err
    code, stdout, err = run_main(lenet.main, ['--ctx', 'cpu', '--out', str(out), '--resume',
                                              '--epochs', '2', '--no-pictures'], 'lenet', capsys)
    assert code == 0, err
    assert stdout.splitlines()[0] == (f'options taken from the checkpoint in '
                                      f'{out / "checkpoint"}: --edition first, --lr 0.3, '
                                      f'--batch-size 128, --num-train 512, --num-test 100, '
                                      f'--seed 7')
    assert 'learning rate' not in stdout and 'epoch 2, loss' in stdout
    code, stdout, err = run_main(lenet.main, ['--ctx', 'cpu', '--out', str(out), '--resume',
                                              '--lr', '0.1', '--no-pictures'], 'lenet', capsys)
    assert code == 0, err
    assert 'taken from the checkpoint in' in stdout and '--epochs 2' in stdout  # nothing to train
    code, stdout, err = run_main(lenet.main, ['--ctx', 'cpu', '--out', str(out), '--resume',
                                              '--lr', '0.1', '--epochs', '3', '--no-pictures'],
                                 'lenet', capsys)
    assert code == 0, err
    assert 'learning rate 0.1 from epoch 3 on (the checkpoint had 0.3)' in stdout
    assert json.load(open(out / 'history.json'))['epochs'][-1]['lr'] == 0.1
    assert [e['lr'] for e in json.load(open(out / 'history.json'))['epochs']] == [0.3, 0.3, 0.1]


# -- divergence -----------------------------------------------------------------------------

def poison_after(monkeypatch, steps):
    """Trainer.step makes the first parameter NaN after `steps` steps, as an
    overflow would; the ReLU after it turns NaN into 0, so the loss stays finite."""
    original, calls = gluon.Trainer.step, []

    def step(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == steps:
            first = self._params[0]
            first.set_data(first.data() * float('nan'))
    monkeypatch.setattr(gluon.Trainer, 'step', step)


def test_nan_parameters_behind_a_finite_loss_stop_the_run(tmp_path, monkeypatch):
    checkpoint = Checkpoint(str(tmp_path / 'ckpt'))
    toy_run(tmp_path, 1, checkpoint=checkpoint)
    before = checksums(tmp_path / 'ckpt')
    poison_after(monkeypatch, 2)
    with pytest.raises(TrainingDiverged) as info:
        toy_run(tmp_path, 3, checkpoint=checkpoint, resume=True, check_every=100)
    assert re.fullmatch(r'parameter dense\d+_(weight|bias) became non-finite \(NaN or infinity\) in '
                        r'epoch 2; the learning rate 0.1 is too high for this network: lower it '
                        r'\(e.g. 0.01\); the last good epoch is kept in the checkpoint, if there '
                        r'is one', str(info.value))
    assert checksums(tmp_path / 'ckpt') == before


def test_a_diverged_chapter_run_exits_1_and_keeps_the_last_good_epoch(tmp_path, monkeypatch,
                                                                      capsys):
    out = tmp_path / 'run'
    argv = ['--quick', '--ratio', '16', '--fc-units', '64', '--ctx', 'cpu', '--num-train', '256',
            '--num-test', '128', '--epochs', '3', '--out', str(out)]
    saved, save = [], Checkpoint.save

    def save_and_record(self, *args):
        save(self, *args)
        saved.append(checksums(self.directory))
    monkeypatch.setattr(Checkpoint, 'save', save_and_record)
    poison_after(monkeypatch, 3)  # 2 steps an epoch: in epoch 2
    code, stdout, err = run_main(vgg.main, argv, 'vgg', capsys)
    assert code == 1
    assert re.fullmatch(r'vgg: error: parameter \w+ became non-finite \(NaN or infinity\) in '
                        r'epoch 2; the learning rate 0.05 is too high .*', one_line(err))
    assert len(saved) == 1 and checksums(out / 'checkpoint') == saved[0]
    assert 'epoch 2,' not in stdout


def explode_after(monkeypatch, steps, factor=1e4):
    """Trainer.step multiplies the last parameter (the output layer's weight,
    in name order) by `factor` after `steps` steps: the loss grows into the
    thousands and stays finite, as a learning rate far too high makes it."""
    original, calls = gluon.Trainer.step, []

    def step(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == steps:
            last = self._params[-1]
            last.set_data(last.data() * factor)
    monkeypatch.setattr(gluon.Trainer, 'step', step)


EXPLODED = (r'the training loss exploded to [0-9.e+]+ per example \(the limit is [0-9.e+]+: 100 '
            r'times its first value, at least 100\) in epoch 2; the learning rate {lr} is too '
            r'high for this network: lower it \(e.g. {lower}\); the last good epoch is kept in '
            r'the checkpoint, if there is one')


def test_an_exploding_finite_loss_stops_the_run(tmp_path, monkeypatch):
    checkpoint = Checkpoint(str(tmp_path / 'ckpt'))
    _, history, _ = toy_run(tmp_path, 1, checkpoint=checkpoint)
    assert history.meta['initial_loss'] == pytest.approx(1.0, abs=0.5)  # about log(3)
    before = checksums(tmp_path / 'ckpt')
    explode_after(monkeypatch, 1)
    with pytest.raises(TrainingDiverged) as info:
        toy_run(tmp_path, 3, checkpoint=checkpoint, resume=True, check_every=100)
    assert re.fullmatch(EXPLODED.format(lr='0.1', lower='0.01'), str(info.value))
    assert checksums(tmp_path / 'ckpt') == before


def test_a_nan_loss_is_named_as_such(tmp_path, monkeypatch):
    """The output layer's weight NaN: the loss is NaN, said before the parameter."""
    explode_after(monkeypatch, 2, factor=float('nan'))
    with pytest.raises(TrainingDiverged, match=r'^the loss became nan in epoch 1; the learning '
                                               r'rate 0.1 is too high'):
        toy_run(tmp_path, 2, check_every=100)


# -- a network that died -------------------------------------------------------------------

def relu_output_run(tmp_path, epochs, kill_after=None, checkpoint=None, resume=False, **kwargs):
    """A tiny net whose output layer ends in ReLU (as SqueezeNet's conv10);
    after `kill_after` steps its output bias is set to -1000, so every class
    score is 0 on every input and every gradient is zero from then on."""
    mx.random.seed(0)
    with mx.name.NameManager():  # names that do not shift the other tests' layer names
        net = nn.HybridSequential()
        net.add(nn.Dense(8, activation='relu'), nn.Dense(3, activation='relu'))
    net.initialize(init.Xavier(), ctx=CTX)
    rng = np.random.default_rng(0)
    data = [(nd.array(rng.normal(size=(8, 5))), nd.array(rng.integers(0, 3, 8), dtype='float32'))
            for _ in range(4)]
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    steps, step = [], trainer.step
    if kill_after == 0:  # dead from the start
        net(data[0][0])
        net[1].bias.set_data(nd.full((3,), -1000.0, ctx=CTX))

    def step_then_kill(*args):
        step(*args)
        steps.append(1)
        if len(steps) == kill_after:
            net[1].bias.set_data(nd.full((3,), -1000.0, ctx=CTX))
    trainer.step = step_then_kill
    lines = []
    train_ch5(net, data, data, 8, trainer, CTX, epochs, checkpoint=checkpoint, resume=resume,
              log=lines.append, **kwargs)
    return steps, lines


def test_a_network_that_died_stops_the_run_and_says_what_to_do(tmp_path):
    checkpoint = Checkpoint(str(tmp_path / 'ckpt'))
    with pytest.raises(NetworkDied) as info:
        relu_output_run(tmp_path, 3, kill_after=4, checkpoint=checkpoint, check_every=1)
    assert str(info.value) == (
        f'the network died in epoch 2: every gradient was zero at 3 checks in a row, 1 batches '
        f'apart, so its output no longer depends on its input (loss {math.log(3):.4f}) and '
        f'gradient descent cannot bring it back; start again with another seed or a lower '
        f'learning rate (now 0.1, e.g. 0.05); the checkpoint keeps the epochs before, if there '
        f'is one')
    assert Checkpoint(str(tmp_path / 'ckpt')).epochs_saved() == 1


def test_the_dead_checks_are_counted_across_epochs_and_only_in_a_row(tmp_path):
    with pytest.raises(NetworkDied) as info:  # steps 4 (epoch 1), 5 and 6 (epoch 2)
        relu_output_run(tmp_path, 2, kill_after=3, check_every=1)
    assert str(info.value).startswith('the network died in epoch 2:')
    steps, _ = relu_output_run(tmp_path, 1, kill_after=3, check_every=2)  # one check after it
    assert len(steps) == 4
    with pytest.raises(NetworkDied, match='^the network died in epoch 1: every gradient was '
                                          'zero at 3 checks in a row, 1 batches apart'):
        relu_output_run(tmp_path, 1, kill_after=0, check_every=1)


def test_a_few_batches_without_gradient_do_not_stop_the_run(tmp_path, monkeypatch):
    """Zero, zero, non-zero, ...: never three in a row."""
    verdicts, check = itertools.cycle([True, True, False]), loop._check_health

    def checked(*args):
        check(*args)
        return next(verdicts)
    monkeypatch.setattr(loop, '_check_health', checked)
    steps, lines = relu_output_run(tmp_path, 2, check_every=1)
    assert len(steps) == 8 and lines[-1].startswith('epoch 2, ')


def test_a_healthy_network_passes_the_gradient_check(tmp_path):
    steps, lines = relu_output_run(tmp_path, 2, check_every=1)
    assert len(steps) == 8 and lines[-1].startswith('epoch 2, ')


def test_a_chapter_run_whose_network_died_exits_1_in_one_line(tmp_path, monkeypatch, capsys):
    def dies(*args, **kwargs):
        raise NetworkDied('the network died in epoch 1: ...')
    monkeypatch.setattr('d2lnets.cli.train_ch5', dies)
    code, _, err = run_main(lenet.main, LENET + ['--out', str(tmp_path / 'run')], 'lenet', capsys)
    assert code == 1
    assert one_line(err) == 'lenet: error: the network died in epoch 1: ...'


def test_an_exploded_chapter_run_exits_1_and_keeps_the_last_good_epoch(lenet_out, monkeypatch,
                                                                       capsys):
    out = lenet_out
    before = checksums(out / 'checkpoint')
    explode_after(monkeypatch, 2)  # 4 steps an epoch: in epoch 2
    code, stdout, err = run_main(lenet.main, LENET + ['--out', str(out), '--epochs', '3',
                                                      '--resume'], 'lenet', capsys)
    assert code == 1
    assert re.fullmatch('lenet: error: ' + EXPLODED.format(lr='0.9', lower='0.09'), one_line(err))
    assert checksums(out / 'checkpoint') == before
    assert 'epoch 2,' not in stdout


def test_the_best_epoch_is_kept_beside_the_last(tmp_path, monkeypatch):
    """Test accuracies 0.5, 0.9, 0.3: checkpoint/best.params holds epoch 2's
    parameters, model.params epoch 3's; a resumed epoch 4 at 0.95 takes over."""
    accuracies = iter([0.5, 0.9, 0.3, 0.95])
    monkeypatch.setattr('d2lnets.training.loop.evaluate_accuracy',
                        lambda *args, **kwargs: next(accuracies))
    ckpt = tmp_path / 'ckpt'
    saved = {}

    def remember(history):
        saved[len(history)] = checksums(ckpt)['model.params']
    checkpoint = Checkpoint(str(ckpt))
    toy_run(tmp_path, 3, checkpoint=checkpoint, on_epoch=remember)
    assert checksums(ckpt)['best.params'] == saved[2] != saved[3]
    assert json.load(open(ckpt / 'manifest.json'))['best'] == {'epoch': 2, 'test_acc': 0.9}
    assert checkpoint.best() == (str(ckpt / 'best.params'), 2, 0.9)
    toy_run(tmp_path, 4, checkpoint=checkpoint, resume=True, on_epoch=remember)
    assert checksums(ckpt)['best.params'] == saved[4] == checksums(ckpt)['model.params']
    assert checkpoint.best() == (str(ckpt / 'best.params'), 4, 0.95)
    assert sorted(os.listdir(tmp_path)) == ['ckpt']


def test_a_chapter_run_names_its_best_epoch(one_epoch):
    best = Checkpoint(str(one_epoch / 'checkpoint')).best()
    assert best[:2] == (str(one_epoch / 'checkpoint' / 'best.params'), 1)
    assert checksums(one_epoch / 'checkpoint')['best.params'] == \
        checksums(one_epoch / 'checkpoint')['model.params']


# -- damaged checkpoints and a full disk ---------------------------------------------------

def test_a_truncated_parameter_file_is_one_line(lenet_out, capsys):
    out = lenet_out
    argv = LENET + ['--out', str(out)]
    params = out / 'checkpoint' / 'model.params'
    params.write_bytes(params.read_bytes()[:1000])
    code, _, err = run_main(lenet.main, argv + ['--epochs', '2', '--resume'], 'lenet', capsys)
    assert code == 1
    assert one_line(err) == (f'lenet: error: the checkpoint in {out / "checkpoint"} is damaged: '
                             f'model.params has 1000 bytes, not 178278; start afresh without '
                             f'--resume (the damaged run is then kept in earlier/)')
    code, _, err = run_main(lenet.main, argv + ['--epochs', '1'], 'lenet', capsys)
    assert code == 0 and (out / 'earlier' / '1' / 'checkpoint' / 'model.params').exists()


def test_a_manifestless_damaged_file_is_still_one_line(tmp_path):
    """A checkpoint from before manifests: a garbled file fails in MXNet, not here."""
    checkpoint = Checkpoint(str(tmp_path / 'ckpt'))
    toy_run(tmp_path, 1, checkpoint=checkpoint)
    os.remove(tmp_path / 'ckpt' / 'manifest.json')
    (tmp_path / 'ckpt' / 'model.params').write_bytes(b'\x00' * 64)
    with pytest.raises(CheckpointError, match='does not fit this network') as info:
        toy_run(tmp_path, 2, checkpoint=checkpoint, resume=True)
    assert '\n' not in str(info.value)


def resign(folder):
    """Rewrite the manifest of a checkpoint folder to match its files, as
    someone who edited them by hand might."""
    manifest = json.load(open(folder / 'manifest.json'))
    for name, entry in manifest['files'].items():
        data = (folder / name).read_bytes()
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (folder / 'manifest.json').write_text(json.dumps(manifest))


def test_another_networks_parameters_behind_a_resigned_manifest_name_the_layer(tmp_path):
    """The net waits for its input shapes (deferred initialisation), so MXNet
    itself would load 8 x 7 weights into it and fail in the next forward pass."""
    toy_run(tmp_path, 1, checkpoint=Checkpoint(str(tmp_path / 'seven')), features=7)
    checkpoint = Checkpoint(str(tmp_path / 'ckpt'))
    toy_run(tmp_path, 1, checkpoint=checkpoint)
    for name in ('model.params', 'best.params'):
        shutil.copyfile(tmp_path / 'seven' / 'model.params', tmp_path / 'ckpt' / name)
    resign(tmp_path / 'ckpt')
    with pytest.raises(CheckpointError) as info:
        toy_run(tmp_path, 2, checkpoint=checkpoint, resume=True)
    assert re.fullmatch(rf'the checkpoint in {re.escape(str(tmp_path / "ckpt"))} does not fit '
                        r'this network \(it holds another network.s parameters\): layer '
                        r'dense\d+_weight \(0.weight\) is \(8, 7\) in the file but \(8, 5\) in '
                        r'this network; start afresh without --resume or pick another '
                        r'checkpoint directory', str(info.value))


def test_another_editions_parameters_in_a_chapter_checkpoint_are_one_line(lenet_out, capsys):
    """LeNet's parameters with one more output class, re-signed: one line naming the layer."""
    folder = lenet_out / 'checkpoint'
    arrays = nd.load(str(folder / 'model.params'))
    name = sorted(arrays)[-1]  # the output layer's weight or bias
    arrays[name] = nd.concat(arrays[name], arrays[name][:1], dim=0)
    nd.save(str(folder / 'model.params'), arrays)
    resign(folder)
    code, _, err = run_main(lenet.main, LENET + ['--out', str(lenet_out), '--epochs', '2',
                                                 '--resume'], 'lenet', capsys)
    assert code == 1
    assert re.fullmatch(rf'lenet: error: the checkpoint in {re.escape(str(folder))} does not '
                        r'fit this network \(it holds another network.s parameters\): layer '
                        rf'\w+ \({re.escape(name)}\) is \(11(, \d+)?\) in the file but '
                        r'\(10(, \d+)?\) in this network; .*', one_line(err))


def test_a_history_that_disagrees_with_the_manifest_is_damaged(lenet_out, capsys):
    """history.json of no epoch beside epoch 1's weights, re-signed: damaged, not
    'resuming after epoch 0'."""
    folder = lenet_out / 'checkpoint'
    history = json.load(open(folder / 'history.json'))
    (folder / 'history.json').write_text(json.dumps({**history, 'epochs': []}))
    resign(folder)
    before = checksums(folder)
    code, stdout, err = run_main(lenet.main, LENET + ['--out', str(lenet_out), '--epochs', '2',
                                                      '--resume'], 'lenet', capsys)
    assert code == 1 and 'resuming' not in stdout
    assert one_line(err) == (f'lenet: error: the checkpoint in {folder} is damaged: '
                             f'history.json has 0 epoch(s) but manifest.json says it holds '
                             f'epoch 1; start afresh without --resume (the damaged run is then '
                             f'kept in earlier/)')
    assert checksums(folder) == before


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_epoch(
        lenet_out, monkeypatch, capsys):
    out = lenet_out
    argv = LENET + ['--out', str(out)]
    before = checksums(out / 'checkpoint')
    monkeypatch.setattr(checkpoint_module, '_write_states', enospc)
    code, _, err = run_main(lenet.main, argv + ['--epochs', '2', '--resume'], 'lenet', capsys)
    assert code == 1
    assert one_line(err) == (f'lenet: error: cannot write the checkpoint for epoch 2 to '
                             f'{out / "checkpoint"} (No space left on device); epoch 1 is still '
                             f'there: free some space or fix the folder, then add --resume to '
                             f'continue')
    assert checksums(out / 'checkpoint') == before
    assert not [n for n in os.listdir(out) if 'saving' in n]


def test_a_full_disk_at_the_end_is_one_line_and_resume_finishes(lenet_out, monkeypatch, capsys):
    out = lenet_out
    argv = LENET + ['--out', str(out), '--epochs', '2', '--resume']
    monkeypatch.setattr('d2lnets.cli.save_history_plot', enospc)
    code, _, err = run_main(lenet.main, argv, 'lenet', capsys)
    assert code == 1
    assert one_line(err) == (f'lenet: error: cannot write history.json and curves.png to {out} '
                             f'(No space left on device); nothing written before is lost: free '
                             f'some space or fix the folder, then add --resume to finish')
    assert Checkpoint(str(out / 'checkpoint')).epochs_saved() == 2
    monkeypatch.undo()
    code, stdout, _ = run_main(lenet.main, argv, 'lenet', capsys)
    assert code == 0 and 'epoch 2,' not in stdout
    assert len(json.load(open(out / 'history.json'))['epochs']) == 2


def interrupt_at_step(monkeypatch, steps):
    """Trainer.step raises KeyboardInterrupt (Ctrl-C) at its `steps`-th call."""
    original, calls = gluon.Trainer.step, []

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == steps:
            raise KeyboardInterrupt
        original(self, *args, **kwargs)
    monkeypatch.setattr(gluon.Trainer, 'step', step)


def test_ctrl_c_before_the_first_epoch_says_nothing_is_saved(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'run'
    interrupt_at_step(monkeypatch, 2)
    code, _, err = run_main(lenet.main, LENET + ['--epochs', '2', '--out', str(out)], 'lenet',
                            capsys)
    assert code == 130
    assert one_line(err) == ('lenet: interrupted before the first epoch finished; nothing is '
                             'saved yet: start the run again (without --resume)')
    assert not Checkpoint(str(out / 'checkpoint')).exists()


def test_ctrl_c_after_an_epoch_says_to_resume(lenet_out, monkeypatch, capsys):
    interrupt_at_step(monkeypatch, 2)
    code, _, err = run_main(lenet.main, LENET + ['--epochs', '3', '--out', str(lenet_out),
                                                 '--resume'], 'lenet', capsys)
    assert code == 130
    assert one_line(err) == ('lenet: interrupted; finished epochs are in the checkpoint: add '
                             '--resume to continue')


def mxnet_full_disk(net, path):
    """Save as MXNet does onto a full disk (/dev/full): its own error, not an OSError."""
    net.save_parameters('/dev/full')


def test_a_full_disk_in_the_first_epoch_says_nothing_is_saved(tmp_path, monkeypatch, capsys):
    out = tmp_path / 'run'
    monkeypatch.setattr(checkpoint_module, '_write_parameters', mxnet_full_disk)
    code, _, err = run_main(lenet.main, LENET + ['--epochs', '2', '--out', str(out)], 'lenet',
                            capsys)
    assert code == 1
    assert one_line(err) == (f'lenet: error: cannot write the checkpoint for epoch 1 to '
                             f'{out / "checkpoint"} (No space left on device: MXNet reported an '
                             f'incomplete write); nothing is saved yet: free some space or fix '
                             f'the folder, then start the run again (without --resume)')
    assert not Checkpoint(str(out / 'checkpoint')).exists()
    assert not [n for n in os.listdir(out) if 'saving' in n]


# -- fine-tuning ----------------------------------------------------------------------------

def test_finetuning_keeps_an_earlier_best_and_resumes(tmp_path, capsys):
    from PIL import Image
    for split, count in (('train', 4), ('val', 2)):
        for name in ('cat', 'dog'):
            folder = tmp_path / 'data' / split / name
            folder.mkdir(parents=True)
            rng = np.random.default_rng(len(name))
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(
                    folder / f'{i}.png')
    (tmp_path / 'data' / 'classes.txt').write_text('cat\ndog\n')
    out = tmp_path / 'run'
    argv = [str(tmp_path / 'data'), '--model', 'googlenet_cifar10', '--batch-size', '4',
            '--workers', '0', '--ctx', 'cpu', '--out', str(out)]
    finetune_chapter.main(argv + ['--epochs', '1'])
    first = checksums(out)
    finetune_chapter.main(argv + ['--epochs', '1'])
    assert checksums(out / 'earlier' / '1') == {k: v for k, v in first.items() if k != '.lock'}
    capsys.readouterr()
    finetune_chapter.main(argv + ['--epochs', '2', '--resume'])
    stdout = capsys.readouterr().out
    assert 'resuming after epoch 1 from' in stdout and 'epoch 2, loss' in stdout
    assert Checkpoint(str(out / 'checkpoint')).epochs_saved() == 2
    with pytest.raises(CheckpointError, match='--optimizer sgd differs'):
        finetune_chapter.main(argv + ['--epochs', '3', '--resume', '--optimizer', 'sgd'])


def test_a_resumed_finetuning_replaces_best_params_only_when_it_does_better(tmp_path):
    from d2lnets.data.batches import ImageBatches
    from d2lnets.training.finetune import finetune
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 16, 16, 3)).astype(np.uint8)
    labels = rng.integers(0, 2, 48)

    def run(epochs, lr, resume):
        mx.random.seed(0)
        net = nn.HybridSequential()
        net.add(nn.Conv2D(4, 3, activation='relu'), nn.Dense(2))
        net.initialize(init.Xavier())
        lines = []
        history, best = finetune(net, ImageBatches(images, labels, 16, shuffle=True, seed=0),
                                 ImageBatches(images, labels, 16), 16, CTX, epochs, lr=lr,
                                 best_path=str(tmp_path / 'best.params'), log=lines.append,
                                 checkpoint=Checkpoint(str(tmp_path / 'ckpt')), resume=resume,
                                 seed=0)
        return history, best, lines
    history, best, _ = run(2, 0.01, False)
    before = checksums(tmp_path)['best.params']
    history, best, lines = run(3, 1e-12, True)  # epoch 3 learns nothing more
    accs = history.column('test_acc')
    assert best == max(accs)
    improved = accs[2] > max(accs[:2])
    assert any(line.startswith('best validation accuracy so far') for line in lines) == improved
    assert (checksums(tmp_path)['best.params'] == before) == (not improved)


def test_a_full_disk_writing_best_params_is_one_line(tmp_path, monkeypatch):
    from d2lnets.data.batches import ImageBatches
    from d2lnets.training.finetune import finetune
    rng = np.random.default_rng(0)
    batches = ImageBatches(rng.integers(0, 256, (16, 8, 8, 3)).astype(np.uint8),
                           rng.integers(0, 2, 16), 8)
    net = nn.HybridSequential()
    net.add(nn.Dense(64), nn.Dense(2))  # 50 kB: more than the C library buffers before writing
    net.initialize(init.Xavier())
    monkeypatch.setattr(nn.HybridSequential, 'save_parameters',
                        lambda self, path: mxnet_full_disk(net, path)
                        if 'best.params' in os.path.basename(path) else
                        gluon.Block.save_parameters(self, path))
    with pytest.raises(CheckpointError) as info:
        finetune(net, batches, batches, 8, CTX, 1, best_path=str(tmp_path / 'best.params'),
                 checkpoint=Checkpoint(str(tmp_path / 'ckpt')), log=lambda line: None)
    assert str(info.value) == (f'cannot write the best epoch (1) to {tmp_path / "best.params"} '
                               f'(No space left on device: MXNet reported an incomplete '
                               f'write); its checkpoint is saved: free some space or fix the '
                               f'folder, then add --resume to continue')
    assert sorted(os.listdir(tmp_path)) == ['ckpt']


def test_a_kill_during_the_first_save_leaves_no_checkpoint_and_no_debris(tmp_path, monkeypatch):
    ckpt_dir = str(tmp_path / 'ckpt')
    original = checkpoint_module._write_parameters

    def then_die(*args):
        original(*args)
        raise Killed
    monkeypatch.setattr(checkpoint_module, '_write_parameters', then_die)
    with pytest.raises(Killed):
        toy_run(tmp_path, 2, checkpoint=Checkpoint(ckpt_dir))
    monkeypatch.undo()
    survivor = Checkpoint(ckpt_dir)
    assert not survivor.exists()
    with pytest.raises(CheckpointError, match='no checkpoint to resume'):
        toy_run(tmp_path, 2, checkpoint=survivor, resume=True)
    toy_run(tmp_path, 1, checkpoint=survivor)
    assert sorted(os.listdir(tmp_path)) == ['ckpt'] and survivor.epochs_saved() == 1
