"""Transfer learning: parameters from a file, a new output layer, fine-tuning
that learns a new task, and the predict command."""
import os
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet import init, nd
from mxnet.gluon import nn
from PIL import Image

from chapters import finetune as finetune_chapter
from d2lnets.inference import predict
from d2lnets.data.batches import ImageBatches
from d2lnets.training import finetune as ft
from d2lnets.training.checkpoint import Checkpoint, CheckpointError
from d2lnets.training.finetune import (ParamsMismatchError, finetune, initialized_model,
                                       load_by_order, make_trainer, pretrained_network,
                                       replace_output)
from d2lnets.training.history import History
from d2lnets.models import get_model
from d2lnets.training.loop import evaluate_accuracy


def small_net(hidden=8, classes=3, seed=0):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=3, activation='relu'), nn.MaxPool2D(2),
            nn.Dense(hidden, activation='relu'), nn.Dense(classes))
    net.initialize(init.Xavier())
    net(nd.zeros((1, 3, 16, 16)))
    return net


def saved(net, path):
    net.save_parameters(str(path))
    return str(path)


def test_parameters_load_in_order_and_the_output_is_replaced(tmp_path):
    source = saved(small_net(seed=1), tmp_path / 'pretrained.params')
    net = load_by_order(small_net(seed=2), source)
    for a, b in zip(net.collect_params().values(), small_net(seed=1).collect_params().values(),
                    strict=True):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())
    new = replace_output(net, 2)
    assert new(nd.zeros((5, 3, 16, 16))).shape == (5, 2)
    np.testing.assert_array_equal(new[0].weight.data().asnumpy(),
                                  net[0].weight.data().asnumpy())


@pytest.mark.parametrize('content, message', [
    ('other', 'array 2 (2.weight) has shape (16, 196) but parameter'),
    ('garbage', 'is not an MXNet parameter file'),
    ('fewer', 'has 4 arrays but the network has 6 parameters'),
])
def test_a_file_that_does_not_fit_is_refused(tmp_path, content, message):
    path = tmp_path / 'file.params'
    if content == 'other':
        saved(small_net(hidden=16), path)
    elif content == 'garbage':
        path.write_bytes(b'not parameters')
    else:
        short = nn.HybridSequential()
        short.add(nn.Conv2D(4, kernel_size=3), nn.Dense(3))
        short.initialize()
        short(nd.zeros((1, 3, 16, 16)))
        saved(short, path)
    with pytest.raises(ParamsMismatchError, match=re.escape(message)):
        load_by_order(small_net(), path)


def colour_task(n, seed):
    """Images that are mostly red (class 0) or mostly blue (class 1), as uint8 HWC."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 100, size=(n, 16, 16, 3)).astype(np.uint8)
    images[labels == 0, :, :, 0] += 150
    images[labels == 1, :, :, 2] += 150
    return images, labels


def test_finetuning_learns_a_new_task_and_keeps_the_best_epoch(tmp_path):
    net = replace_output(load_by_order(small_net(), saved(small_net(seed=5),
                                                          tmp_path / 'p.params')), 2)
    train = ImageBatches(*colour_task(128, 0), 16, shuffle=True, seed=0)
    val = ImageBatches(*colour_task(64, 1), 16)
    best_path = str(tmp_path / 'out' / 'best.params')
    before = evaluate_accuracy(val, net, mx.cpu())
    history, best = finetune(net, train, val, 16, mx.cpu(), 4, optimizer='adam', lr=0.01,
                             best_path=best_path, log=lambda line: None)
    accs = history.column('test_acc')
    assert before < 0.8 and best >= 0.95 and best == max(accs)
    reloaded = replace_output(small_net(), 2)
    reloaded.load_parameters(best_path)
    assert evaluate_accuracy(val, reloaded, mx.cpu()) == best



def test_a_resumed_finetuning_keeps_the_best_of_all_its_epochs(tmp_path):
    train = ImageBatches(*colour_task(128, 0), 16, shuffle=True, seed=0)
    val = ImageBatches(*colour_task(64, 1), 16)
    checkpoint = Checkpoint(str(tmp_path / 'checkpoint'))
    best_path = str(tmp_path / 'best.params')
    lines = []
    with mx.name.NameManager():  # fresh layer numbers: dense0, dense1, dense2
        net = replace_output(small_net(), 2)
    first, _ = finetune(net, train, val, 16, mx.cpu(), 1, lr=0.01,
                        best_path=best_path, log=lines.append, checkpoint=checkpoint)
    with open(best_path, 'rb') as f:
        best_after_one = f.read()
    # Mark the checkpointed epoch better than any epoch can be: the resumed
    # epoch must then leave best.params alone, and best must report it.
    # (saved through the checkpoint, so its manifest's checksums still hold,
    # with the optimizer state the first run saved).
    first.epochs[0] = dict(first.epochs[0], test_acc=2.0)
    checkpoint.save(net, SavedStates(checkpoint.path('trainer.states')), first)
    # Rebuilt in a kernel that made other nets first, the layers' names can sort
    # in another order than they run (dense9 before dense11); Adam's states must fit.
    def shapes_by_name(block):
        return [param.shape[0] for _, param in sorted(block.collect_params().items())]

    with mx.name.NameManager():
        for _ in range(8):
            nn.Dense(1)  # the net's layers become dense8, dense9, dense10: dense10 sorts first
        resumed = replace_output(small_net(), 2)
    assert shapes_by_name(resumed) != shapes_by_name(net)
    history, best = finetune(resumed, train, val, 16, mx.cpu(), 2,
                             lr=0.01, best_path=best_path, log=lines.append,
                             checkpoint=checkpoint, resume=True)
    assert len(history) == 2 and any(line.startswith('resuming after epoch 1') for line in lines)
    assert best == 2.0 and history.epochs[1]['test_acc'] <= 1.0
    with open(best_path, 'rb') as f:
        assert f.read() == best_after_one

class SavedStates:
    """Stands in for a trainer whose optimizer state is the file at `path`."""

    def __init__(self, path):
        with open(path, 'rb') as f:
            self.data = f.read()

    def save_states(self, path):
        with open(path, 'wb') as f:
            f.write(self.data)


def write_images(folder, count, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(
            folder / f'{i}.png')


def test_predict_prints_top_k_names_and_refuses_what_does_not_fit(tmp_path, capsys):
    (tmp_path / 'classes.txt').write_text('daisy\nrose\ntulip\n')
    net = get_model('googlenet_cifar10', num_classes=3)
    net.initialize()
    net(nd.zeros((1, 3, 32, 32)))
    params = saved(net, tmp_path / 'best.params')
    write_images(tmp_path / 'photos', 2)
    (tmp_path / 'photos' / 'broken.jpg').write_bytes(b'no image')
    args = ['--model', 'googlenet_cifar10', '--params', params, '--classes',
            str(tmp_path / 'classes.txt'), '--top', '2', str(tmp_path / 'photos')]
    with pytest.raises(SystemExit) as info:
        predict.main(args)
    assert info.value.code == 1  # the broken image
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        ranked = line.split(': ', 1)[1].split(', ')
        assert len(ranked) == 2
        assert {r.split()[0] for r in ranked} <= {'daisy', 'rose', 'tulip'}
        assert sum(float(r.split()[1]) for r in ranked) <= 1.0001
    assert 'broken.jpg is not a JPEG, PNG or BMP image' in err
    (tmp_path / 'classes.txt').write_text('a\nb\nc\nd\n')
    with pytest.raises(SystemExit) as info:
        predict.main(args)
    assert info.value.code == 2
    assert 'does not fit googlenet_cifar10 with 4 classes' in capsys.readouterr().err


def test_finetune_chapter_end_to_end(tmp_path, capsys):
    for split, count in (('train', 4), ('val', 2)):
        for name in ('cat', 'dog'):
            write_images(tmp_path / 'data' / split / name, count, seed=len(name))
    (tmp_path / 'data' / 'classes.txt').write_text('cat\ndog\n')
    zoo = get_model('googlenet_cifar10', num_classes=1000)
    zoo.initialize(init.Xavier())
    zoo(nd.zeros((1, 3, 32, 32)))
    pretrained = saved(zoo, tmp_path / 'googlenet.params')
    out = tmp_path / 'run'
    finetune_chapter.main([str(tmp_path / 'data'), '--model', 'googlenet_cifar10', '--pretrained',
                           pretrained, '--epochs', '1', '--batch-size', '4', '--workers', '0',
                           '--ctx', 'cpu', '--out', str(out), '--augment', 'vgg-paper'])
    assert os.path.isfile(out / 'best.params')
    assert '8 training and 4 validation images, 2 classes' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        finetune_chapter.main([str(tmp_path / 'data'), '--model', 'resnet18', '--pretrained',
                               pretrained, '--ctx', 'cpu', '--out', str(out)])
    assert 'from another architecture' in capsys.readouterr().err


@pytest.mark.parametrize('ours, zoo', [('vgg11_bn', 'vgg11_bn'), ('resnet18', 'resnet18_v1')])
def test_model_zoo_parameters_come_in_our_order(ours, zoo):
    """A model-zoo .params file loads by order: the zoo's parameters have the
    same shapes in the same order as the registry's network."""
    shapes = []
    for net in (get_model(ours), mx.gluon.model_zoo.vision.get_model(zoo)):
        net.initialize()
        net(nd.zeros((1, 3, 224, 224)))
        shapes.append([p.shape for p in net.collect_params().values()])
    assert shapes[0] == shapes[1]


# The predict command, piece by piece (mutation testing, docs/results.md) ----------

PREDICT_HELP = """\
usage: python -m d2lnets.inference.predict [-h] --model MODEL --params PARAMS
                                           --classes CLASSES [--top TOP]
                                           paths [paths ...]

Top-k classes of images.

positional arguments:
  paths              image files or folders of images

options:
  -h, --help         show this help message and exit
  --model MODEL      registry name, e.g. vgg16
  --params PARAMS    the fine-tuned .params file
  --classes CLASSES  class index file (classes.txt)
  --top TOP          classes to print (default: 5)
"""


def test_predict_help_names_every_option(capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '80')
    with pytest.raises(SystemExit) as info:
        predict.main(['--help'])
    assert info.value.code == 0
    out = capsys.readouterr().out.replace('optional arguments:', 'options:')  # Python < 3.10
    assert out == PREDICT_HELP


@pytest.mark.parametrize('missing', ['--model', '--params', '--classes'])
def test_predict_needs_the_model_its_parameters_and_the_classes(missing, tmp_path, capsys):
    given = {'--model': 'googlenet_cifar10', '--params': str(tmp_path / 'p.params'),
             '--classes': str(tmp_path / 'classes.txt')}
    del given[missing]
    with pytest.raises(SystemExit) as info:
        predict.main([a for pair in given.items() for a in pair] + [str(tmp_path)])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        f'python -m d2lnets.inference.predict: error: the following arguments are required: '
        f'{missing} (see --help)\n')


def test_image_paths_keeps_the_order_given_and_sorts_inside_folders(tmp_path):
    write_images(tmp_path / 'folder' / 'inner', 2)
    write_images(tmp_path / 'folder', 2, seed=1)
    (tmp_path / 'folder' / 'notes.txt').write_text('not an image')
    (tmp_path / 'folder' / 'UPPER.JPG').write_bytes(b'')
    first, last = tmp_path / 'z.png', tmp_path / 'a.png'
    first.write_bytes(b'')
    last.write_bytes(b'')
    folder = str(tmp_path / 'folder')
    assert predict.image_paths([str(first), folder, str(last)]) == [
        str(first), os.path.join(folder, '0.png'), os.path.join(folder, '1.png'),
        os.path.join(folder, 'UPPER.JPG'), os.path.join(folder, 'inner', '0.png'),
        os.path.join(folder, 'inner', '1.png'), str(last)]


def test_image_paths_with_no_image_names_what_was_searched(tmp_path):
    for name in ('a', 'b'):
        (tmp_path / name).mkdir()
    with pytest.raises(ValueError) as info:
        predict.image_paths([str(tmp_path / 'a'), str(tmp_path / 'b')])
    assert str(info.value) == (f'no image to predict in {tmp_path / "a"}, {tmp_path / "b"}: '
                               f'folders are searched for .jpg, .jpeg, .png, .bmp files')


def test_top_k_ranks_the_most_probable_classes_first(tmp_path):
    write_images(tmp_path, 1)
    scores = np.array([1.0, 3.0, 2.0, 0.0, -1.0])
    probs = np.exp(scores) / np.exp(scores).sum()  # float64 softmax
    def net(x):
        assert x.shape == (1, 3, 224, 224)
        return nd.array(scores[None])
    ranked = predict.top_k(net, str(tmp_path / '0.png'), list('abcde'), 3, mx.cpu())
    assert [name for name, _ in ranked] == ['b', 'c', 'a']
    np.testing.assert_allclose([p for _, p in ranked], probs[[1, 2, 0]], rtol=1e-6)


@pytest.fixture
def predict_setup(tmp_path):
    """A googlenet_cifar10 of seven classes saved to a file, and a folder of photos."""
    names = [f'class{i}' for i in range(7)]
    (tmp_path / 'classes.txt').write_text('\n'.join(names) + '\n')
    mx.random.seed(4)
    net = get_model('googlenet_cifar10', num_classes=7)
    net.initialize(init.Xavier())
    net(nd.zeros((1, 3, 32, 32)))
    write_images(tmp_path / 'photos', 2)
    return names, net, saved(net, tmp_path / 'best.params'), tmp_path


def test_predict_prints_the_five_most_probable_classes_by_default(predict_setup, capsys):
    from d2lnets.data.augment import evaluation
    from d2lnets.data.image_folder import read_image
    names, net, params, tmp_path = predict_setup
    predict.main(['--model', 'googlenet_cifar10', '--params', params, '--classes',
                  str(tmp_path / 'classes.txt'), str(tmp_path / 'photos')])  # exits 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line, image in zip(lines, ('0.png', '1.png'), strict=True):
        path = str(tmp_path / 'photos' / image)
        scores = net(evaluation()(read_image(path)).expand_dims(axis=0))[0].asnumpy()
        probs = np.exp(scores.astype(np.float64) - scores.max())
        probs /= probs.sum()
        assert line.startswith(f'{path}: ')
        ranked = [item.rsplit(' ', 1) for item in line.split(': ', 1)[1].split(', ')]
        assert len(ranked) == 5
        order = np.argsort(-probs)[:5]
        assert [name for name, _ in ranked] == [names[i] for i in order]
        np.testing.assert_allclose([float(p) for _, p in ranked], probs[order], atol=6e-4)


def test_predict_goes_on_past_an_unreadable_image_and_exits_1(predict_setup, capsys):
    names, net, params, tmp_path = predict_setup
    (tmp_path / 'photos' / '00.jpg').write_bytes(b'no image')  # sorted first
    with pytest.raises(SystemExit) as info:
        predict.main(['--model', 'googlenet_cifar10', '--params', params, '--classes',
                      str(tmp_path / 'classes.txt'), '--top', '1', str(tmp_path / 'photos')])
    assert info.value.code == 1
    out, err = capsys.readouterr()
    assert [line.split(': ')[0] for line in out.splitlines()] == [
        str(tmp_path / 'photos' / name) for name in ('0.png', '1.png')]
    assert err.startswith(f'python -m d2lnets.inference.predict: {tmp_path / "photos"}')


def test_load_network_loads_onto_the_context_given(predict_setup):
    names, net, params, tmp_path = predict_setup
    elsewhere = predict.load_network('googlenet_cifar10', params, 7, mx.cpu(1))
    assert {c for p in elsewhere.collect_params().values() for c in p.list_ctx()} == \
        {mx.cpu(1)}
    for a, b in zip(elsewhere.collect_params().values(), net.collect_params().values(),
                    strict=True):
        np.testing.assert_array_equal(a.data(mx.cpu(1)).asnumpy(), b.data().asnumpy())


def test_load_network_says_why_the_file_does_not_fit(predict_setup):
    names, net, params, tmp_path = predict_setup
    with pytest.raises(ValueError, match=(
            r"best.params does not fit googlenet_cifar10 with 4 classes \(Failed loading "
            r"Parameter '\w+' from saved params: shape incompatible expected \(4, 1024\) vs "
            r"saved \(7, 1024\)\)$")):
        predict.load_network('googlenet_cifar10', params, 4, mx.cpu())


# The library's parts one at a time (mutation testing): exact refusals, the
# device a layer is made on, and what `finetune` asks of `train_ch5`, checked
# with `train_ch5` stood in for (no training).

def test_load_by_order_keeps_the_networks_own_last_skip_last_parameters(tmp_path):
    """The output layer (weight and bias) is left alone, even one of a single
    class (a dimension of 1 is a known size, not a shape still to infer)."""
    source = saved(small_net(classes=1, seed=1), tmp_path / 'source.params')
    target = small_net(classes=1, seed=2)
    own = [p.data().asnumpy() for p in target.collect_params().values()]
    load_by_order(target, source, skip_last=2)
    expected = [p.data().asnumpy() for p in small_net(classes=1, seed=1).collect_params().values()]
    got = [p.data().asnumpy() for p in target.collect_params().values()]
    for a, b in zip(got, expected[:4] + own[4:], strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(got[4], expected[4])
    whole = small_net(classes=1, seed=1)
    for param in whole.collect_params().values():  # nonzero biases, unlike a fresh Dense's
        param.set_data(nd.random.uniform(-1, 1, param.shape))
    load_by_order(target, saved(whole, tmp_path / 'whole.params'))  # by default: every one
    for a, b in zip(target.collect_params().values(), whole.collect_params().values(),
                    strict=True):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())


def test_files_and_networks_that_do_not_fit_are_refused_in_their_own_words(tmp_path):
    unshaped = nn.HybridSequential()
    unshaped.add(nn.Dense(3))
    unshaped.initialize()
    with pytest.raises(ValueError) as info:
        load_by_order(unshaped, tmp_path / 'any.params')
    assert str(info.value) == ('initialise the network and pass one batch through it before '
                               'loading parameters into it')
    listed = tmp_path / 'listed.params'
    nd.save(str(listed), [nd.zeros(1)])
    garbage = tmp_path / 'garbage.params'
    garbage.write_bytes(b'not parameters')
    other = saved(small_net(hidden=16), tmp_path / 'other.params')
    net = small_net()
    expects = list(net.collect_params().values())[2]
    for path, message in [
            (listed, f'{listed} holds a list of arrays, not named parameters'),
            (garbage, f'{garbage} is not an MXNet parameter file'),
            (other, f'{other}: array 2 (2.weight) has shape (16, 196) but parameter '
                    f'{expects.name} expects (8, 196); the file is from another architecture')]:
        with pytest.raises(ParamsMismatchError) as info:
            load_by_order(net, path)
        assert str(info.value) == message


def test_a_new_output_layer_follows_the_same_layers_on_the_networks_device():
    mx.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Dense(8, activation='relu'), nn.Dense(6, activation='relu'), nn.Dense(3))
    net.initialize(init.Xavier(), ctx=mx.cpu(1))
    net(nd.zeros((1, 5), ctx=mx.cpu(1)))
    new = replace_output(net, 2)
    assert [id(block) for block in new][:-1] == [id(block) for block in net][:-1]
    assert len(new) == 3 and new[-1] is not net[-1] and new[-1]._units == 2
    assert new[-1].weight.list_ctx() == [mx.cpu(1)]
    assert new(nd.zeros((4, 5), ctx=mx.cpu(1))).shape == (4, 2)
    # Xavier: uniform within sqrt(6 / (6 + 2)) = 0.87, not MXNet's default 0.07
    assert 0.1 < np.abs(new[-1].weight.data(mx.cpu(1)).asnumpy()).max() <= 0.87


def test_a_model_zoo_layout_gets_its_output_replaced_in_place_under_its_name():
    net = get_model('resnet18', num_classes=10)
    net.initialize(init.Xavier(), ctx=mx.cpu(1))
    net(nd.zeros((1, 3, 32, 32), ctx=mx.cpu(1)))
    features = net.features
    assert replace_output(net, 4) is net and net.features is features
    assert isinstance(net.output, nn.Dense) and net.output._units == 4
    assert [p.name for p in net.output.collect_params().values()] == [
        f'{net.prefix}output_weight', f'{net.prefix}output_bias']
    assert net.output.weight.list_ctx() == [mx.cpu(1)]
    assert net(nd.zeros((2, 3, 32, 32), ctx=mx.cpu(1))).shape == (2, 4)
    assert np.abs(net.output.weight.data(mx.cpu(1)).asnumpy()).max() > 0.1  # Xavier, 512 in


@pytest.mark.parametrize('kind', ['conv last', 'not hybrid'])
def test_replace_output_needs_a_hybrid_sequential_ending_in_dense(kind):
    net = nn.HybridSequential() if kind == 'conv last' else nn.Sequential()
    net.add(nn.Dense(4), nn.Conv2D(2, 1)) if kind == 'conv last' else net.add(nn.Dense(4))
    net.initialize()
    with pytest.raises(ValueError) as info:
        replace_output(net, 2)
    assert str(info.value) == 'replace_output needs a HybridSequential ending in a Dense layer'


def test_an_initialized_model_is_run_once_on_the_input_shape_and_device_given():
    net = initialized_model('lenet', mx.cpu(1), (1, 32, 32))
    assert {c for p in net.collect_params().values() for c in p.list_ctx()} == {mx.cpu(1)}
    assert net[-3].weight.shape == (120, 16 * 6 * 6)  # 32x32 input: 6x6 after the convolutions
    # Xavier: uniform within sqrt(6 / (576 + 120)) = 0.093, not MXNet's default 0.07
    assert 0.08 < np.abs(net[-3].weight.data(mx.cpu(1)).asnumpy()).max() <= 0.093
    default = initialized_model('lenet', mx.cpu(1))  # the registry's 28x28
    assert default[-3].weight.shape == (120, 16 * 5 * 5)
    first = initialized_model('lenet', mx.cpu(1), (1, 32, 32), edition='first')  # no padding
    assert first[-3].weight.shape == (120, 16 * 5 * 5)


def test_a_pretrained_network_takes_the_files_parameters_but_a_new_output(tmp_path, monkeypatch):
    source = initialized_model('lenet', mx.cpu(), (1, 32, 32), edition='first')
    for param in source.collect_params().values():  # biases too, not Xavier's zeros
        param.set_data(nd.random.uniform(-1, 1, param.shape))
    monkeypatch.setenv('HOME', str(tmp_path))
    source.save_parameters(str(tmp_path / 'lenet.params'))
    mx.random.seed(3)
    net = pretrained_network('lenet', '~/lenet.params', 4, mx.cpu(1), (1, 32, 32),
                             edition='first')
    params = list(net.collect_params().values())
    for param, original in zip(params[:-2], list(source.collect_params().values())[:-2],
                               strict=True):
        assert param.list_ctx() == [mx.cpu(1)]
        np.testing.assert_array_equal(param.data(mx.cpu(1)).asnumpy(), original.data().asnumpy())
    assert net(nd.zeros((2, 1, 32, 32), ctx=mx.cpu(1))).shape == (2, 4)
    assert params[-2].shape == (4, 84) and params[-2].list_ctx() == [mx.cpu(1)]


def test_make_trainer_adam_at_2e_4_by_default_or_sgd_with_momentum_in_the_networks_order():
    with mx.name.NameManager():
        for _ in range(9):
            nn.Dense(1)  # the net's layers are dense9 and dense10: dense10 sorts first
        net = nn.HybridSequential()
        net.add(nn.Dense(3, in_units=2), nn.Dense(2, in_units=3))
    net.initialize()
    adam = make_trainer(net)
    assert type(adam._optimizer).__name__ == 'Adam' and adam.learning_rate == 2e-4
    assert [p.name for p in adam._params] == [p.name for p in net.collect_params().values()]
    sgd = make_trainer(net, 'sgd', 0.05)
    assert type(sgd._optimizer).__name__ == 'SGD' and sgd.learning_rate == 0.05
    assert sgd._optimizer.momentum == 0.9
    assert make_trainer(net, 'adam', 0.1)._optimizer.beta1 == 0.9  # no momentum key for Adam
    with pytest.raises(ValueError) as info:
        make_trainer(net, 'rmsprop')
    assert str(info.value) == "optimizer 'rmsprop': use one of adam, sgd"


@pytest.mark.parametrize('checkpointed, then', [
    (False, 'free some space or fix the folder, then run again'),
    (True, 'its checkpoint is saved: free some space or fix the folder, then add --resume '
           'to continue'),
])
def test_a_best_epoch_that_cannot_be_written_is_one_line(tmp_path, checkpointed, then):
    folder = tmp_path / 'best.params'
    folder.mkdir()  # a folder where the file should go
    with pytest.raises(CheckpointError) as info:
        ft._save_best(small_net(), str(folder), 3, checkpointed)
    assert str(info.value) == (f'cannot write the best epoch (3) to {folder} (Is a directory); '
                               f'{then}')


class StandInCheckpoint:
    """Stands in for a Checkpoint: its history's test accuracies, whether it
    writes, and where copy_parameters was asked to copy the best to."""

    def __init__(self, accs=(), write=True):
        self.accs, self.write, self.copied = list(accs), write, []

    def history(self):
        history = History()
        for epoch, acc in enumerate(self.accs, 1):
            history.append(epoch=epoch, loss=1.0, train_acc=0.5, test_acc=acc, time=1.0,
                           examples_per_sec=10.0)
        return history

    def copy_parameters(self, path):
        self.copied.append(path)


@pytest.fixture
def stand_in_training(monkeypatch):
    """finetune with train_ch5, make_trainer and _save_best stood in for:
    train_ch5 gives the epochs' accuracies in `calls['accs']` to on_epoch."""
    calls = {'accs': [], 'train': [], 'trainer': [], 'saved': []}

    def train_ch5(net, train_iter, val_iter, batch_size, trainer, ctx, num_epochs, **kwargs):
        calls['train'].append(((net, train_iter, val_iter, batch_size, trainer, ctx, num_epochs),
                               kwargs))
        history = History()
        for epoch, acc in enumerate(calls['accs'], 1):
            history.append(epoch=epoch, loss=1.0, train_acc=0.5, test_acc=acc, time=1.0,
                           examples_per_sec=10.0)
            kwargs['on_epoch'](history)
        return history

    monkeypatch.setattr(ft, 'train_ch5', train_ch5)
    monkeypatch.setattr(ft, 'make_trainer',
                        lambda *args: calls['trainer'].append(args) or 'trainer')
    monkeypatch.setattr(ft, '_save_best', lambda *args: calls['saved'].append(args))
    return calls


def test_finetune_hands_its_settings_to_train_ch5_and_keeps_each_better_epoch(
        stand_in_training, tmp_path):
    calls = stand_in_training
    calls['accs'] = [0.5, 0.7, 0.7, 0.6, 0.9]
    lines, seen = [], []
    best_path = str(tmp_path / 'a' / 'b' / 'best.params')
    history, best = finetune('net', 'train', 'val', 16, 'ctx', 5, optimizer='sgd', lr=0.1,
                             best_path=best_path, log=lines.append,
                             on_epoch=lambda h: seen.append(len(h)), options={'x': 1}, seed=7)
    assert calls['trainer'] == [('net', 'sgd', 0.1)]
    (args, kwargs), = calls['train']
    assert args == ('net', 'train', 'val', 16, 'trainer', 'ctx', 5)
    assert kwargs.pop('on_epoch').__name__ == 'keep_best'
    assert kwargs == {'log': lines.append, 'checkpoint': None, 'resume': False,
                      'options': {'x': 1}, 'seed': 7}
    assert [saved[1:] for saved in calls['saved']] == [(best_path, 1, False), (best_path, 2, False),
                                                      (best_path, 5, False)]
    assert all(saved[0] == 'net' for saved in calls['saved'])
    assert os.path.isdir(tmp_path / 'a' / 'b')
    assert lines == [f'best validation accuracy so far ({acc}): saved {best_path}'
                     for acc in ('0.500', '0.700', '0.900')]
    assert seen == [1, 2, 3, 4, 5] and best == 0.9 and len(history) == 5


def test_finetune_defaults_to_adam_at_2e_4_and_a_fresh_run(stand_in_training):
    calls = stand_in_training
    history, best = finetune('net', 'train', 'val', 16, 'ctx', 0, log=print)
    assert calls['trainer'] == [('net', 'adam', 2e-4)]
    assert calls['train'][0][1]['resume'] is False and calls['saved'] == []
    assert len(history) == 0 and best == -1.0  # no epoch: no accuracy


def test_without_a_best_path_nothing_is_saved_and_the_epochs_still_reach_on_epoch(
        stand_in_training):
    stand_in_training['accs'] = [0.5, 0.7]
    seen = []
    finetune('net', 'train', 'val', 16, 'ctx', 2, log=print, on_epoch=lambda h: seen.append(len(h)))
    assert stand_in_training['saved'] == [] and seen == [1, 2]


@pytest.mark.parametrize('write', [True, False])
def test_a_checkpointed_best_epoch_says_so_when_it_cannot_be_written(stand_in_training, tmp_path,
                                                                      write):
    stand_in_training['accs'] = [0.5]
    checkpoint = StandInCheckpoint(write=write)
    finetune('net', 'train', 'val', 16, 'ctx', 1, best_path=str(tmp_path / 'best.params'),
             log=print, checkpoint=checkpoint)
    assert [saved[3] for saved in stand_in_training['saved']] == [write]
    assert stand_in_training['train'][0][1]['checkpoint'] is checkpoint


@pytest.mark.parametrize('accs, resume, best_path, copied', [
    ([0.5, 0.9], True, 'best.params', True),  # stopped between the checkpoint and the best
    ([0.9, 0.5], True, 'best.params', False),
    ([0.9, 0.9], True, 'best.params', False),  # the best is the earlier of equal ones
    ([], True, 'best.params', False),
    ([0.5, 0.9], False, 'best.params', False),
    ([0.5, 0.9], True, None, False),
])
def test_a_resumed_run_makes_the_best_file_again_only_when_the_last_epoch_is_the_best(
        stand_in_training, accs, resume, best_path, copied):
    checkpoint = StandInCheckpoint(accs)
    finetune('net', 'train', 'val', 16, 'ctx', 3, best_path=best_path, log=print,
             checkpoint=checkpoint, resume=resume)
    assert checkpoint.copied == ([best_path] if copied else [])
    assert stand_in_training['train'][0][1]['resume'] is resume
