"""Every chapter: --help, one-line errors, the blocks it teaches (the library's
own objects), and a short real run that prints the book's shape table and
writes its history and pictures."""
import importlib
import json
import os
import subprocess
import sys

import pytest

import d2lnets
from d2lnets.recipes import get_recipe
from d2lnets.viz.pictures import PICTURE_FILES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# chapter -> the first line of its shape table at the book's input size
CHAPTERS = {
    'lenet': '(1, 6, 24, 24)',
    'alexnet': '(1, 96, 54, 54)',
    'nin': '(1, 96, 54, 54)',
    'googlenet': '(1, 64, 24, 24)',
    'batchnorm': '(1, 6, 24, 24)',
    'resnet': '(1, 64, 48, 48)',
    'densenet': '(1, 64, 48, 48)',
    'vgg': '(1, 64, 112, 112)',
    'squeezenet': '(1, 96, 109, 109)',
}
# chapter -> the blocks and builders it teaches, importable from it
EXPORTS = {
    'lenet': ['lenet'],
    'alexnet': ['alexnet', 'alexnet_book'],
    'vgg': ['vgg_block', 'vgg'],
    'nin': ['nin_block', 'nin'],
    'googlenet': ['Inception', 'googlenet'],
    'batchnorm': ['batch_norm', 'BatchNorm', 'lenet_bn', 'lenet_bn_scratch'],
    'resnet': ['Residual', 'resnet_block', 'resnet18_book'],
    'densenet': ['conv_block', 'DenseBlock', 'transition_block', 'densenet', 'densenet_book'],
    'squeezenet': ['Fire', 'squeezenet'],
}


@pytest.mark.parametrize('chapter', sorted(EXPORTS))
def test_a_chapter_exports_the_librarys_own_blocks(chapter):
    """`from chapters.vgg import vgg_block` is d2lnets.vgg_block itself: one copy."""
    module = importlib.import_module(f'chapters.{chapter}')
    for name in EXPORTS[chapter]:
        assert getattr(module, name) is getattr(d2lnets, name), name
        assert getattr(module, name).__module__.startswith('d2lnets.models.'), name
    assert set(EXPORTS[chapter]) <= set(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.parametrize('chapter', sorted(CHAPTERS))
def test_help_names_the_book_section_and_defaults(chapter, capsys):
    module = importlib.import_module(f'chapters.{chapter}')
    with pytest.raises(SystemExit) as info:
        module.main(['--help'])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert 'D2L section' in out and '(book: ' in out and '--quick' in out


@pytest.mark.parametrize('chapter', sorted(CHAPTERS))
def test_an_input_too_small_for_the_network_is_one_line(chapter, capsys, tmp_path):
    module = importlib.import_module(f'chapters.{chapter}')
    with pytest.raises(SystemExit) as info:
        module.main(['--resize', '8', '--ctx', 'cpu', '--out', str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and '--resize 8 is below' in err


SHORT_RUN = sorted(set(CHAPTERS) - {'vgg', 'squeezenet'})  # these two have their own tests


@pytest.mark.parametrize('chapter,at_book_size', [(c, False) for c in SHORT_RUN] + [
    pytest.param(c, True, marks=pytest.mark.slow) for c in SHORT_RUN])
def test_a_short_run(chapter, at_book_size, tmp_path):
    """One epoch on 20 images: the chapter builds its network, prints the shape
    table, trains, and writes its history and pictures. The default run trains
    at the smallest input the network takes; the slow run at the book's size,
    whose first shape it checks."""
    out = tmp_path / chapter
    recipe = importlib.import_module(f'chapters.{chapter}').RECIPE
    size = ([] if at_book_size or recipe.book['resize'] is None  # LeNets: 28x28 as they are
            else ['--resize', str(recipe.min_resize)])
    result = subprocess.run(
        [sys.executable, '-m', f'chapters.{chapter}', '--ctx', 'cpu', '--epochs', '1',
         '--num-train', '20', '--num-test', '20', *size, '--out', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    shape = lines[0].split('output shape:')[1].split('params:')[0].strip()
    if at_book_size:
        assert shape == CHAPTERS[chapter]
    assert shape.startswith('(1, ')
    assert any(line.startswith('epoch 1, loss ') for line in lines)
    history = json.load(open(out / 'history.json'))
    assert history['meta']['num_train'] == 20 and len(history['epochs']) == 1
    for name in PICTURE_FILES:
        assert (out / name).read_bytes()[:4] == b'\x89PNG', name


def test_squeezenet_versions_and_bypasses(tmp_path):
    """SqueezeNet 1.1 with complex bypass, one epoch at 32x32 on 256 images: it
    reads one channel, predicts ten classes and prints its own shape table."""
    out = tmp_path / 'squeezenet'
    result = subprocess.run(
        [sys.executable, '-m', 'chapters.squeezenet', '--ctx', 'cpu', '--version', '1.1',
         '--bypass', 'complex', '--resize', '32', '--epochs', '1', '--num-train', '256',
         '--num-test', '100', '--no-pictures', '--out', str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split('output shape:')[1].split('params:')[0].strip() == '(1, 64, 15, 15)'
    assert any('_fire' in line.split()[0] and 'params:' in line for line in lines)
    assert any(line.startswith('epoch 1, loss ') for line in lines)
    history = json.load(open(out / 'history.json'))
    assert history['meta']['title'] == 'SqueezeNet 1.1, complex bypass, 32x32'
    assert not any((out / name).exists() for name in PICTURE_FILES)


def test_squeezenet_book_defaults():
    from chapters import squeezenet
    from d2lnets.cli import chapter_parser, parse_chapter_args
    parser = chapter_parser('squeezenet', 'test', squeezenet.BOOK, squeezenet.QUICK)
    parser.add_argument('--version')
    parser.add_argument('--bypass')
    args = parse_chapter_args(parser, ['--ctx', 'cpu'])
    assert (args.version, args.bypass, args.lr, args.batch_size, args.resize, args.epochs,
            args.pictures) == ('1.0', 'none', 0.02, 128, 224, 5, True)


def test_quick_preset_and_explicit_options():
    """--quick fills in every preset option (subset sizes included); an option
    given explicitly wins; without --quick the book's defaults hold."""
    from chapters import resnet
    from d2lnets.cli import chapter_parser, parse_chapter_args
    parser = chapter_parser('resnet', 'test', resnet.BOOK, resnet.QUICK)
    quick = parse_chapter_args(parser, ['--quick', '--ctx', 'cpu', '--epochs', '7'])
    assert (quick.num_train, quick.num_test, quick.epochs, quick.lr, quick.resize) == (
        12000, 2000, 7, 0.05, 32)
    book = parse_chapter_args(parser, ['--ctx', 'cpu'])
    assert (book.num_train, book.num_test, book.epochs, book.resize) == (None, None, 5, 96)


def test_notebook_preset_is_the_notebooks_default_and_excludes_quick(capsys):
    """--notebook fills in the recipe's notebook preset, which the notebooks train
    on a CPU; --quick and --notebook together are refused in one line."""
    from chapters import resnet
    from d2lnets.cli import chapter_parser, parse_chapter_args
    parser = chapter_parser('resnet', 'test', resnet.BOOK, resnet.QUICK, notebook=resnet.NOTEBOOK)
    notebook = parse_chapter_args(parser, ['--notebook', '--ctx', 'cpu'])
    expected = get_recipe('resnet').settings('notebook')
    assert {key: getattr(notebook, key) for key in expected} == expected
    with pytest.raises(SystemExit) as stop:
        parse_chapter_args(parser, ['--notebook', '--quick', '--ctx', 'cpu'])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'not allowed with argument' in err


def test_ctrl_c_keeps_the_finished_epochs_and_resume_continues(tmp_path):
    import signal
    import time
    out = tmp_path / 'run'
    args = [sys.executable, '-m', 'chapters.lenet', '--ctx', 'cpu', '--num-train', '1000',
            '--num-test', '200', '--out', str(out)]
    proc = subprocess.Popen(args + ['--epochs', '1000'], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    history = out / 'checkpoint' / 'history.json'
    deadline = time.time() + 120
    while not history.exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == ('python -m chapters.lenet: interrupted; finished '
                                            'epochs are in the checkpoint: add --resume to '
                                            'continue')
    done = len(json.load(open(history))['epochs'])
    assert done >= 1
    resumed = subprocess.run(args + ['--epochs', str(done + 1), '--resume'], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f'resuming after epoch {done} from' in resumed.stdout
    assert f'epoch {done + 1}, loss ' in resumed.stdout
    assert len(json.load(open(out / 'history.json'))['epochs']) == done + 1
