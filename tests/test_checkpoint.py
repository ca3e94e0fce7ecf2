"""The checkpoint directory (d2lnets.training.checkpoint) piece by piece, in
process and without training: what a save writes, how a checkpoint is found
again after a kill, and the words of every refusal. The whole-run behaviour
(kills at each step, chapters, a full disk) is in test_faults_runs.py."""
import hashlib
import json
import os
import stat

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon, init, nd
from mxnet.base import MXNetError
from mxnet.gluon import nn

from d2lnets.training import checkpoint as checkpoint_module
from d2lnets.training.checkpoint import (Checkpoint, CheckpointError, keep_earlier,
                                         option_flag, write_error_reason)
from d2lnets.training.history import History


def small_net(features=5, outputs=3, seed=0):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    net.add(nn.Dense(4, activation='relu'), nn.Dense(outputs))
    net.initialize(init.Xavier())
    net(nd.zeros((1, features)))
    return net


def trainer_of(net):
    return gluon.Trainer(list(net.collect_params().values()), 'sgd',
                         {'learning_rate': 0.1, 'momentum': 0.9})


def history_of(accuracies, **meta):
    history = History(meta=meta)
    for epoch, acc in enumerate(accuracies, 1):
        history.append(epoch=epoch, loss=1.0 / epoch, train_acc=acc, test_acc=acc, time=1.0,
                       examples_per_sec=10.0)
    return history


def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def saved(tmp_path, accuracies=(0.5,), name='ckpt', **kwargs):
    """A checkpoint of `len(accuracies)` epochs, each saved in turn, with
    parameters that differ from epoch to epoch."""
    ckpt = Checkpoint(str(tmp_path / name), **kwargs)
    net = small_net()
    trainer = trainer_of(net)
    for n in range(1, len(accuracies) + 1):
        for param in net.collect_params().values():
            param.set_data(param.data() + 1)
        ckpt.save(net, trainer, history_of(accuracies[:n]))
    return ckpt, net, trainer


def test_option_flag_spells_the_command_line_option():
    assert option_flag('batch_size') == '--batch-size'
    assert option_flag('num_train_per_class') == '--num-train-per-class'
    assert option_flag('lr') == '--lr'


def test_a_save_writes_each_file_and_a_manifest_of_their_sizes_and_sums(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5, 0.75, 0.25))
    folder = tmp_path / 'ckpt'
    assert ckpt.directory == str(folder) and ckpt.path('x') == str(folder / 'x')
    assert sorted(os.listdir(folder)) == ['best.params', 'history.json', 'manifest.json',
                                          'model.params', 'trainer.states']
    assert sorted(os.listdir(tmp_path)) == ['ckpt']
    manifest = json.loads((folder / 'manifest.json').read_text())
    assert manifest['epoch'] == 3 and manifest['best'] == {'epoch': 2, 'test_acc': 0.75}
    assert sorted(manifest['files']) == ['best.params', 'history.json', 'model.params',
                                         'trainer.states']
    for name, entry in manifest['files'].items():
        assert entry == {'bytes': os.path.getsize(folder / name), 'sha256': sha256(folder / name)}
    assert (folder / 'manifest.json').read_text().startswith('{\n  "epoch": 3,\n  "files"')
    assert ckpt.exists() and ckpt.epochs_saved() == 3
    assert ckpt.history().column('test_acc') == [0.5, 0.75, 0.25]
    assert ckpt.best() == (str(folder / 'best.params'), 2, 0.75)


def test_the_checkpoint_folder_gets_the_permissions_of_any_new_folder(tmp_path):
    """mkdtemp makes 0o700; the folder must be readable as any folder the user makes."""
    mask = os.umask(0o022)
    try:
        saved(tmp_path)
        assert stat.S_IMODE(os.stat(tmp_path / 'ckpt').st_mode) == 0o755
        os.umask(0o027)
        saved(tmp_path, name='other')
        assert stat.S_IMODE(os.stat(tmp_path / 'other').st_mode) == 0o750
    finally:
        os.umask(mask)


def test_a_reader_only_checkpoint_writes_nothing(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5,), write=False)
    assert not os.path.exists(tmp_path / 'ckpt') and not ckpt.exists()
    assert ckpt.epochs_saved() == 0 and ckpt.best() is None


def test_without_trainer_states_there_is_no_states_file(tmp_path):
    ckpt, net, trainer = saved(tmp_path, (0.5,), trainer_states=False)
    assert 'trainer.states' not in os.listdir(tmp_path / 'ckpt')
    assert 'trainer.states' not in json.loads((tmp_path / 'ckpt' / 'manifest.json').read_text())[
        'files']
    assert len(ckpt.restore(small_net(seed=1), trainer_of(net), mx.cpu())) == 1


def history_refused(ckpt):
    """The message of the CheckpointError that reading ckpt's history raises."""
    with pytest.raises(CheckpointError) as info:
        ckpt.history()
    return str(info.value)


def test_no_checkpoint_has_no_best_and_no_epochs(tmp_path):
    ckpt = Checkpoint(str(tmp_path / 'none'))
    assert ckpt.best() is None and ckpt.epochs_saved() == 0 and not ckpt.exists()
    assert history_refused(ckpt) == (
        f'no checkpoint to resume in {tmp_path / "none"}; start without '
        f'--resume')


def test_a_checkpoint_from_before_manifests_has_no_best_but_loads(tmp_path):
    ckpt, net, _ = saved(tmp_path, (0.5, 0.75))
    os.remove(tmp_path / 'ckpt' / 'manifest.json')
    assert ckpt.best() is None and ckpt.epochs_saved() == 2
    restored = small_net(seed=1)
    assert len(ckpt.restore(restored, trainer_of(restored), mx.cpu())) == 2
    for a, b in zip(net.collect_params().values(), restored.collect_params().values(),
                    strict=True):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())


def test_write_error_reason_is_a_few_words():
    assert write_error_reason(OSError(28, os.strerror(28))) == 'No space left on device'
    assert write_error_reason(MXNetError('[12:00:00] FileStream.Write incomplete\nStack')) == \
        'No space left on device: MXNet reported an incomplete write'
    assert write_error_reason(MXNetError('Check failed: fo != nullptr\nStack trace')) == \
        'Check failed: fo != nullptr'
    assert write_error_reason(ValueError('FileStream.Write incomplete here')) == \
        'FileStream.Write incomplete here'  # the words alone are not MXNet's report


def test_a_trainer_without_local_updaters_fits_any_state():
    assert checkpoint_module._states_fit(object()) is True


def test_keep_earlier_moves_what_exists_into_the_next_number(tmp_path):
    lines = []
    assert keep_earlier(str(tmp_path), ['history.json'], lines.append) is None
    assert lines == [] and not (tmp_path / 'earlier').exists()
    (tmp_path / 'history.json').write_text('1')
    (tmp_path / 'curves.png').write_text('2')
    os.symlink('nowhere', tmp_path / 'link')  # a dangling link is moved too
    (tmp_path / 'earlier' / '7').mkdir(parents=True)
    (tmp_path / 'earlier' / 'notes').mkdir()
    target = keep_earlier(str(tmp_path), ['history.json', 'missing', 'link', 'curves.png'],
                          lines.append)
    assert target == str(tmp_path / 'earlier' / '8')
    assert sorted(os.listdir(target)) == ['curves.png', 'history.json', 'link']
    assert lines == [f'keeping the earlier run (history.json, link, curves.png) in {target}']
    assert sorted(os.listdir(tmp_path)) == ['earlier']


def test_keep_earlier_skips_a_number_taken_meanwhile(tmp_path, monkeypatch):
    """Two runs setting aside at once: the number found taken is passed over."""
    (tmp_path / 'history.json').write_text('1')
    real_mkdir = os.mkdir

    def racing_mkdir(path, *args):
        if path.endswith(os.path.join('earlier', '1')):
            real_mkdir(path)  # the other run got there first
        real_mkdir(path, *args)
    monkeypatch.setattr(os, 'mkdir', racing_mkdir)
    target = keep_earlier(str(tmp_path), ['history.json'], lambda line: None)
    assert target == str(tmp_path / 'earlier' / '2')
    assert os.listdir(tmp_path / 'earlier' / '1') == []


def test_set_aside_moves_the_checkpoint_into_earlier(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5,))
    assert Checkpoint(str(tmp_path / 'none')).set_aside() is None
    lines = []
    assert ckpt.set_aside(lines.append) == str(tmp_path / 'earlier' / '1')
    assert lines == [f'keeping the earlier run (ckpt) in {tmp_path / "earlier" / "1"}']
    assert not ckpt.exists() and Checkpoint(str(tmp_path / 'earlier' / '1' / 'ckpt')).exists()


def test_a_kill_between_the_renames_is_recovered_from_the_newest_complete_folder(tmp_path):
    """No ckpt/ at all: two complete saving folders (epochs 2 and 3, named so that
    the older sorts last), a half-written one and .ckpt.old; the epoch-3 folder
    is put in place and the rest removed."""
    ckpt, _, _ = saved(tmp_path, (0.5, 0.6, 0.7))
    epoch3 = tmp_path / 'ckpt'
    os.rename(epoch3, tmp_path / '.ckpt.saving-a')
    saved(tmp_path, (0.5, 0.6), name='two')
    os.rename(tmp_path / 'two', tmp_path / '.ckpt.saving-z')
    (tmp_path / '.ckpt.saving-m').mkdir()  # no manifest yet: half written
    saved(tmp_path, (0.5,), name='one')
    os.rename(tmp_path / 'one', tmp_path / '.ckpt.old')
    assert ckpt.exists() and ckpt.epochs_saved() == 3
    ckpt.recover()
    assert sorted(os.listdir(tmp_path)) == ['ckpt']
    assert ckpt.epochs_saved() == 3 and ckpt.history().column('test_acc') == [0.5, 0.6, 0.7]


def test_the_retired_folder_alone_is_the_checkpoint(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5, 0.6))
    os.rename(tmp_path / 'ckpt', tmp_path / '.ckpt.old')
    assert ckpt.exists() and ckpt.epochs_saved() == 2
    ckpt.recover()
    assert sorted(os.listdir(tmp_path)) == ['ckpt'] and ckpt.epochs_saved() == 2


def test_copy_parameters_copies_the_saved_ones(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5,))
    ckpt.copy_parameters(str(tmp_path / 'copy.params'))
    assert sha256(tmp_path / 'copy.params') == sha256(tmp_path / 'ckpt' / 'model.params')
    assert sorted(os.listdir(tmp_path)) == ['ckpt', 'copy.params']


def test_where_links_are_refused_the_best_is_a_copy(tmp_path, monkeypatch):
    def no_links(source, target):
        raise OSError(1, 'Operation not permitted')
    monkeypatch.setattr(os, 'link', no_links)
    ckpt, _, _ = saved(tmp_path, (0.5, 0.9, 0.3))
    folder = tmp_path / 'ckpt'
    assert os.stat(folder / 'best.params').st_nlink == 1
    assert ckpt.best() == (str(folder / 'best.params'), 2, 0.9)
    assert sha256(folder / 'best.params') != sha256(folder / 'model.params')
    restored = small_net(seed=1)
    ckpt.restore(restored, trainer_of(restored), mx.cpu())  # the manifest checks out


def test_the_earliest_of_equal_best_accuracies_is_kept(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5, 0.7, 0.7))
    assert ckpt.best()[1:] == (2, 0.7)


def saved_without_best_params(tmp_path):
    """Epoch 1 (accuracy 0.9) saved as a checkpoint from before best.params
    was kept: its manifest names no best. (ckpt, net, trainer, folder)."""
    ckpt, net, trainer = saved(tmp_path, (0.9,))
    folder = tmp_path / 'ckpt'
    manifest = json.loads((folder / 'manifest.json').read_text())
    del manifest['best'], manifest['files']['best.params']
    os.remove(folder / 'best.params')
    (folder / 'manifest.json').write_text(json.dumps(manifest))
    return ckpt, net, trainer, folder


def test_a_best_from_before_best_params_was_kept_is_not_invented(tmp_path):
    """Epoch 1 best, saved without best.params (an older checkpoint): epoch 2,
    worse, cannot name a best it has no parameters for."""
    ckpt, net, trainer, folder = saved_without_best_params(tmp_path)
    ckpt.save(net, trainer, history_of((0.9, 0.5)))
    assert ckpt.best() is None and 'best.params' not in os.listdir(folder)
    ckpt.save(net, trainer, history_of((0.9, 0.5, 0.95)))
    assert ckpt.best() == (str(folder / 'best.params'), 3, 0.95)


def test_a_best_from_another_epoch_in_the_previous_manifest_is_not_linked(tmp_path):
    ckpt, net, trainer = saved(tmp_path, (0.9, 0.5))
    folder = tmp_path / 'ckpt'
    manifest = json.loads((folder / 'manifest.json').read_text())
    manifest['best']['epoch'] = 2  # disagrees with the history
    (folder / 'manifest.json').write_text(json.dumps(manifest))
    ckpt.save(net, trainer, history_of((0.9, 0.5, 0.4)))
    assert ckpt.best() is None


def test_the_best_is_a_link_to_its_epochs_parameters_kept_through_worse_epochs(tmp_path):
    ckpt, net, trainer = saved(tmp_path, (0.5, 0.75))
    folder = tmp_path / 'ckpt'
    epoch2 = sha256(folder / 'model.params')
    assert os.path.samefile(folder / 'best.params', folder / 'model.params')
    for param in net.collect_params().values():
        param.set_data(param.data() * 2)
    ckpt.save(net, trainer, history_of((0.5, 0.75, 0.25)))
    assert sha256(folder / 'best.params') == epoch2 != sha256(folder / 'model.params')
    assert ckpt.best()[1:] == (2, 0.75)


def restore_into(ckpt, net=None, options=None):
    net = net or small_net(seed=1)
    return ckpt.restore(net, trainer_of(net), mx.cpu(), options)


def test_a_changed_option_is_refused_by_its_flag(tmp_path):
    ckpt = Checkpoint(str(tmp_path / 'ckpt'))
    net = small_net()
    ckpt.save(net, trainer_of(net), history_of(
        (0.5,), options={'batch_size': 64, 'seed': None, 'lr': 0.1, 'edition': 'first'}))
    where = tmp_path / 'ckpt'
    for given, message in (
            ({'batch_size': 32}, f'--batch-size 32 differs from the run checkpointed in {where}, '
                                 f'which had --batch-size 64; resume with the same value, or '
                                 f'start afresh without --resume'),
            ({'seed': 3}, f'--seed 3 differs from the run checkpointed in {where}, which had '
                          f'left unset; resume with the same value, or start afresh without '
                          f'--resume'),
            ({'lr': None}, f'--lr unset differs from the run checkpointed in {where}, which had '
                           f'--lr 0.1; resume with the same value, or start afresh without '
                           f'--resume'),
            ({'edition': 'second', 'batch_size': 32}, '--batch-size 32 differs')):  # sorted
        with pytest.raises(CheckpointError) as info:
            restore_into(ckpt, options=given)
        assert str(info.value).startswith(message), str(info.value)
    assert len(restore_into(ckpt, options={'batch_size': 64, 'seed': None, 'other': 1})) == 1
    assert len(restore_into(ckpt)) == 1


def test_a_damaged_file_is_named_with_what_is_wrong(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5,))
    folder = tmp_path / 'ckpt'
    end = ('; start afresh without --resume (the damaged run is then kept in earlier/)')
    states = (folder / 'trainer.states').read_bytes()
    (folder / 'trainer.states').write_bytes(states[:-1] + bytes([states[-1] ^ 1]))
    assert history_refused(ckpt) == (
        f'the checkpoint in {folder} is damaged: trainer.states does not '
        f'match its checksum' + end)
    (folder / 'trainer.states').write_bytes(states + b'x')
    assert history_refused(ckpt) == (
        f'the checkpoint in {folder} is damaged: trainer.states has '
        f'{len(states) + 1} bytes, not {len(states)}' + end)
    os.remove(folder / 'trainer.states')
    assert history_refused(ckpt) == (
        f'the checkpoint in {folder} is damaged: trainer.states is '
        f'missing' + end)
    (folder / 'manifest.json').write_text('{"epoch": 1}')
    assert history_refused(ckpt) == (
        f"the checkpoint in {folder} is damaged: its manifest cannot be "
        f"read ('files'); start afresh without --resume")
    (folder / 'manifest.json').write_text('{"epoch": 1, "files": {}}')
    assert len(ckpt.history()) == 1  # nothing listed, nothing to check


def test_a_history_that_cannot_be_read_or_is_misnumbered_is_refused(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5, 0.6))
    folder = tmp_path / 'ckpt'
    os.remove(folder / 'manifest.json')
    good = (folder / 'history.json').read_text()
    (folder / 'history.json').write_text('{"meta": {}}')
    assert history_refused(ckpt) == (
        f"the history in {folder} cannot be read ('epochs'); start afresh "
        f"without --resume")
    (folder / 'history.json').write_text('{')
    with pytest.raises(CheckpointError, match=r'cannot be read \(Expecting property name'):
        ckpt.history()
    data = json.loads(good)
    data['epochs'][0]['epoch'] = 0
    (folder / 'history.json').write_text(json.dumps(data))
    assert history_refused(ckpt) == (
        f'the checkpoint in {folder} is damaged: its epochs are numbered '
        f'[0, 2], not 1 to 2; start afresh without --resume (the damaged '
        f'run is then kept in earlier/)')


def learn(net, trainer):
    """One SGD step, which gives the momentum a state."""
    from mxnet import autograd
    with autograd.record():
        loss = net(nd.ones((2, 5))).sum()
    loss.backward()
    trainer.step(2)


def arrays_of(net):
    return {name: param.data() for name, param in net._collect_params_with_prefix().items()}


def test_parameters_of_another_network_are_named_in_words():
    net = small_net()
    mismatch = checkpoint_module._parameter_mismatch
    assert mismatch(net, arrays_of(net)) is None
    w0, b0 = (p.name for p in list(net.collect_params().values())[:2])
    short = {k: v for k, v in arrays_of(net).items() if k != '0.bias'}
    assert mismatch(net, short) == f'0.bias ({b0}) of this network is not in the file'
    extra = {**arrays_of(net), '2.weight': nd.zeros((1,)), '2.bias': nd.zeros((1,))}
    assert mismatch(net, extra) == 'the file has 2.bias, which this network lacks'
    wider = {**arrays_of(net), '0.weight': nd.zeros((4, 6))}
    assert mismatch(net, wider) == f'layer {w0} (0.weight) is (4, 6) in the file but (4, 5) in ' \
                                   f'this network'
    flat = {**arrays_of(net), '0.weight': nd.zeros((20,))}
    assert mismatch(net, flat) == f'layer {w0} (0.weight) is (20,) in the file but (4, 5) in ' \
                                  f'this network'
    waiting = nn.HybridSequential()
    waiting.add(nn.Dense(4), nn.Dense(3))
    waiting.initialize()  # shapes (4, 0) and (3, 0) until the first batch
    assert mismatch(waiting, arrays_of(net)) is None  # an unknown size fits any
    assert mismatch(waiting, wider) is None
    too_many = {**arrays_of(net), '1.weight': nd.zeros((2, 4))}
    w1 = list(waiting.collect_params().values())[2].name
    assert mismatch(waiting, too_many) == f'layer {w1} (1.weight) is (2, 4) in the file but ' \
                                          f'(3, ?) in this network'
    assert mismatch(net, {'dense0_weight': nd.zeros((1,))}) is None  # the older format: MXNet's


def test_restore_checks_the_shapes_of_a_network_still_waiting_for_them(tmp_path):
    """A network whose first batch has not run yet: the input shape recorded in
    the history lets the restore infer its shapes, on the context given."""
    ckpt = Checkpoint(str(tmp_path / 'ckpt'))
    net = small_net(features=7)
    ckpt.save(net, trainer_of(net), history_of((0.5,), input_shape=[5]))
    waiting = nn.HybridSequential()
    waiting.add(nn.Dense(4, activation='relu'), nn.Dense(3))
    waiting.initialize(ctx=mx.cpu(1))
    with pytest.raises(CheckpointError) as info:
        ckpt.restore(waiting, trainer_of(waiting), [mx.cpu(1)])
    weight = list(waiting.collect_params().values())[0].name
    assert str(info.value) == (
        f"the checkpoint in {tmp_path / 'ckpt'} does not fit this network (it holds another "
        f"network's parameters): layer {weight} (0.weight) is (4, 7) in the file but (4, 5) in "
        f"this network; start afresh without --resume or pick another checkpoint directory")
    assert list(waiting.collect_params().values())[0].list_ctx() == [mx.cpu(1)]


def test_restore_loads_parameters_and_states_onto_the_context(tmp_path):
    ckpt, net, trainer = saved(tmp_path, (0.5,))
    learn(net, trainer)  # momentum to save
    ckpt.save(net, trainer, history_of((0.5, 0.6), input_shape=[5]))
    waiting = nn.HybridSequential()
    waiting.add(nn.Dense(4, activation='relu'), nn.Dense(3))
    waiting.initialize(ctx=mx.cpu(1))
    fresh = trainer_of(waiting)
    assert len(ckpt.restore(waiting, fresh, mx.cpu(1))) == 2
    for a, b in zip(net.collect_params().values(), waiting.collect_params().values(),
                    strict=True):
        assert b.list_ctx() == [mx.cpu(1)]
        np.testing.assert_array_equal(a.data().asnumpy(), b.data(mx.cpu(1)).asnumpy())
    assert fresh._updaters[0].states.keys() == trainer._updaters[0].states.keys()
    for index, state in trainer._updaters[0].states.items():
        np.testing.assert_array_equal(state.asnumpy(),
                                      fresh._updaters[0].states[index].asnumpy())


def test_a_file_mxnet_cannot_read_is_one_line(tmp_path):
    ckpt, _, _ = saved(tmp_path, (0.5,))
    os.remove(tmp_path / 'ckpt' / 'manifest.json')
    (tmp_path / 'ckpt' / 'trainer.states').write_bytes(b'not a state')
    with pytest.raises(CheckpointError) as info:
        restore_into(ckpt)
    assert str(info.value) == (f"the checkpoint in {tmp_path / 'ckpt'} does not fit this "
                               f"network (invalid load key, 'n'.); start afresh without "
                               f"--resume or pick another checkpoint directory")  # pickle's words


@pytest.mark.parametrize('optimizer, settings', [('sgd', {'momentum': 0.9}),
                                                 ('adam', {})])  # a state, a tuple of two
def test_optimizer_state_of_other_shapes_is_refused_in_words(tmp_path, optimizer, settings):
    ckpt = Checkpoint(str(tmp_path / 'ckpt'))
    net = small_net()
    trainer = gluon.Trainer(list(net.collect_params().values()), optimizer,
                            {'learning_rate': 0.1, **settings})
    learn(net, trainer)
    ckpt.save(net, trainer, history_of((0.5,)))
    swapped = small_net(seed=1)
    params = list(swapped.collect_params().values())
    fresh = gluon.Trainer([params[1], params[0]] + params[2:], optimizer,
                          {'learning_rate': 0.1, **settings})
    with pytest.raises(CheckpointError) as info:
        ckpt.restore(swapped, fresh, mx.cpu())
    assert str(info.value) == (
        f"the optimizer state in {tmp_path / 'ckpt'} does not fit this trainer's parameters: a "
        f"Trainer given net.collect_params() orders them by name, and this network's layers are "
        f"numbered differently from the saved run's; build it with "
        f"gluon.Trainer(list(net.collect_params().values()), ...) in both runs, or build the "
        f"network as the saved run did")
    without = Checkpoint(str(tmp_path / 'ckpt'), trainer_states=False)
    assert len(without.restore(swapped, fresh, mx.cpu())) == 1  # states not read, not checked
    same = gluon.Trainer(params, optimizer, {'learning_rate': 0.1, **settings})
    assert len(ckpt.restore(swapped, same, mx.cpu())) == 1


def test_only_array_states_are_compared_with_their_parameters():
    """A state that is not an array (None for SGD without momentum, or
    anything else an optimizer keeps) says nothing about shapes."""
    class Param:
        shape = (2, 3)

    class Updater:
        def __init__(self, states):
            self.states = states

    class Trainer:
        _params = [Param()]

        def __init__(self, *states):
            self._updaters = [Updater({0: state}) for state in states]
    fits = checkpoint_module._states_fit
    assert fits(Trainer(None, 0.5, (nd.zeros((2, 3)), 'step 7')))
    assert fits(Trainer([nd.zeros((2, 3)), None]))
    assert not fits(Trainer(None, [nd.zeros((3, 2))]))
    assert not fits(Trainer((nd.zeros((2, 3)), nd.zeros((6,)))))


def test_only_a_network_waiting_for_shapes_is_run_and_only_when_the_shape_is_known(tmp_path):
    """Layers without bias have no parameter of known shape: the restore must
    still infer theirs. A checkpoint without an input shape (written before it
    was recorded) leaves a waiting network to MXNet's deferred loading."""
    def no_bias_net(ctx=mx.cpu()):
        net = nn.HybridSequential()
        net.add(nn.Dense(4, use_bias=False), nn.Dense(3, use_bias=False))
        net.initialize(ctx=ctx)
        return net
    seven = no_bias_net()
    seven(nd.zeros((1, 7)))
    ckpt = Checkpoint(str(tmp_path / 'ckpt'))
    ckpt.save(seven, trainer_of(seven), history_of((0.5,), input_shape=[5]))
    waiting = no_bias_net()
    with pytest.raises(CheckpointError, match=r'is \(4, 7\) in the file but \(4, 5\) in this'):
        ckpt.restore(waiting, trainer_of(waiting), mx.cpu())
    old = Checkpoint(str(tmp_path / 'old'))
    old.save(seven, trainer_of(seven), history_of((0.5,)))
    waiting = no_bias_net()
    assert len(old.restore(waiting, trainer_of(waiting), mx.cpu())) == 1
    assert waiting(nd.ones((2, 7))).shape == (2, 3)


def test_a_save_without_a_best_leaves_best_out_of_the_manifest(tmp_path):
    """Epoch 1 best but saved without best.params: the saves after it name no
    best (no `"best": null`, which the next save could not read), and a third,
    worse epoch still saves."""
    ckpt, net, trainer, folder = saved_without_best_params(tmp_path)
    for accuracies in ((0.9, 0.5), (0.9, 0.5, 0.4)):
        ckpt.save(net, trainer, history_of(accuracies))
        manifest = json.loads((folder / 'manifest.json').read_text())
        assert sorted(manifest) == ['epoch', 'files'] and manifest['epoch'] == len(accuracies)
        assert ckpt.best() is None


def test_a_linked_best_is_read_once_for_the_manifest(tmp_path, monkeypatch):
    """best.params is a hard link to model.params when the epoch is the best:
    its checksum is taken once (a VGG's parameters are half a gigabyte)."""
    read = []
    original = checkpoint_module._sha256

    def counting(path):
        read.append(os.path.basename(path))
        return original(path)
    monkeypatch.setattr(checkpoint_module, '_sha256', counting)
    ckpt, _, _ = saved(tmp_path, (0.5,))
    assert sorted(read) == ['history.json', 'model.params', 'trainer.states']
    files = json.loads((tmp_path / 'ckpt' / 'manifest.json').read_text())['files']
    assert files['best.params'] == files['model.params']
