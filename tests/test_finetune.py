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
from d2lnets.training.checkpoint import Checkpoint
from d2lnets.training.finetune import ParamsMismatchError, finetune, load_by_order, replace_output
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
