"""Fault injection: bad input and hangs outside student code (issue 13).

Each case gives a program a hostile input and asserts the outcome: the exit
code, an error of ONE line on stderr without "Traceback", and the files on
disk unchanged where nothing should be written. Bad values that are refused
while parsing run in-process (milliseconds); cases whose path goes through a
whole program (the chapter's error handler, loader processes, the launcher's
processes) run as real subprocesses. docs/reliability-inputs.md lists every
case with its command.
"""
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from chapters import finetune as finetune_chapter
from chapters import googlenet as googlenet_chapter
from chapters import lenet as lenet_chapter
from chapters import vgg as vgg_chapter
from d2lnets import _messages
from d2lnets.data import image_folder
from d2lnets.data.batches import ImageBatches, load_data_fashion_mnist
from d2lnets.inference import predict
from d2lnets.models import UnknownModelError, get_model
from d2lnets.models.lenet import lenet
from d2lnets.training import launch
from d2lnets.training.outlock import LOCK
from d2lnets.viz.shapes import print_layer_shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Downloads fail at once: a proxy on a port where nothing listens.
OFFLINE = {'http_proxy': 'http://127.0.0.1:9', 'https_proxy': 'http://127.0.0.1:9'}


# Helpers ----------------------------------------------------------------------

def snapshot(folder):
    """{relative path: sha256} of every file under `folder` but the lock file
    a run leaves there (d2lnets.training.outlock; it holds no result)."""
    found = {}
    for directory, _, files in os.walk(folder):
        for name in files:
            if name == LOCK:
                continue
            path = os.path.join(directory, name)
            with open(path, 'rb') as f:
                found[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return found


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_line(code, stderr, expected_code, message):
    lines = error_lines(stderr)
    assert code == expected_code, stderr
    assert len(lines) == 1, stderr
    assert 'Traceback' not in stderr
    assert message in lines[0], lines[0]


def run_in_process(main, argv, capsys):
    """(exit code, stderr) of `main(argv)`, which must end with SystemExit."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    code = info.value.code
    err = capsys.readouterr().err
    if isinstance(code, str):  # sys.exit('message') prints it and exits 1
        return 1, err + code + '\n'
    return code, err


def run_program(module, *args, timeout=120, env=None):
    """(CompletedProcess, seconds) of `python -m module ARGS` from the repository root."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, 'PYTHONPATH': ROOT, **OFFLINE, **(env or {})})
    return result, time.monotonic() - start


def write_image(path, seed=0, size=(24, 32)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def class_folder(root, counts):
    """root/<class>/<i>.jpg with `counts[class]` images each."""
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            write_image(root / name / f'{i}.jpg', seed=i)
    return root


def split_folder(root, counts):
    """root/train, root/val (the same classes) and root/classes.txt."""
    class_folder(root / 'train', counts)
    class_folder(root / 'val', {name: 1 for name in counts})
    (root / 'classes.txt').write_text(''.join(f'{name}\n' for name in counts))
    return root


@pytest.fixture
def earlier_run(tmp_path):
    """An OUT folder holding an earlier run's files, which a refused run must not touch."""
    out = tmp_path / 'run'
    (out / 'checkpoint').mkdir(parents=True)
    (out / 'history.json').write_text('{"earlier": true}')
    (out / 'checkpoint' / 'model.params').write_bytes(b'earlier parameters')
    return out


# Chapter options: refused while parsing, nothing written ------------------------

CHAPTER_CASES = [
    (lenet_chapter, ['--resize', '100000'], 'argument --resize: 100000 is above 1024'),
    (lenet_chapter, ['--resize', '0'], 'argument --resize: 0 is not positive'),
    (lenet_chapter, ['--resize', '8'], '--resize 8 is below 16'),
    (lenet_chapter, ['--num-train', '60001'], '--num-train: 60001 is above 60000'),
    (lenet_chapter, ['--num-train', '5'], '--num-train 5 is below 10'),
    (lenet_chapter, ['--num-train', '-1'], '--num-train: -1 is not positive'),
    (lenet_chapter, ['--num-test', '10001'], '--num-test: 10001 is above 10000'),
    (lenet_chapter, ['--seed', '-1'], '--seed: -1 is not in 0..4294967295'),
    (lenet_chapter, ['--seed', str(2 ** 32)], f'--seed: {2 ** 32} is not in 0..4294967295'),
    (lenet_chapter, ['--seed', 'abc'], "--seed: 'abc' is not a whole number"),
    (lenet_chapter, ['--lr', 'inf'], '--lr: inf is not a finite number'),
    (lenet_chapter, ['--lr', '1e400'], '--lr: inf is not a finite number'),
    (lenet_chapter, ['--lr', 'nan'], '--lr: nan is not a finite number'),
    (lenet_chapter, ['--lr', '-0.1'], '--lr: -0.1 is not positive'),
    (lenet_chapter, ['--epochs', '0'], '--epochs: 0 is not positive'),
    (lenet_chapter, ['--batch-size', '2.5'], "--batch-size: '2.5' is not a whole number"),
    (lenet_chapter, ['--data-root', '/nonexistent/fashion-mnist'],
     '--data-root /nonexistent/fashion-mnist is not a folder'),
    (lenet_chapter, ['--ctx', 'gpu:x'], "--ctx 'gpu:x': use 'cpu', 'gpu' or 'gpu:N'"),
    (lenet_chapter, ['--ctx', 'cpu,cpu'], 'a device is named twice'),
    (lenet_chapter, ['--kvstore', 'nope'], "argument --kvstore: invalid choice: 'nope'"),
    (vgg_chapter, ['--ratio', '3'], '--ratio 3 does not divide 64'),
    (googlenet_chapter, ['--crop-scale', 'nan'], '--crop-scale: nan is not a finite number'),
    (googlenet_chapter, ['--crop-scale', '2'], '--crop-scale 2.0 must lie in (0, 1]'),
    (googlenet_chapter, ['--workers', '-1'], '--workers: -1 is negative'),
    (googlenet_chapter, ['--dataset', 'cifar10', '--num-train', '50001'],
     '--num-train 50001 is above 50000'),
]


@pytest.mark.parametrize('chapter, argv, message', CHAPTER_CASES,
                         ids=[' '.join(argv) for _, argv, _ in CHAPTER_CASES])
def test_a_bad_chapter_option_is_one_line_and_writes_nothing(chapter, argv, message, capsys,
                                                            earlier_run):
    before = snapshot(earlier_run)
    code, err = run_in_process(chapter.main, [*argv, '--ctx', 'cpu', '--out', str(earlier_run)]
                               if '--ctx' not in argv else [*argv, '--out', str(earlier_run)],
                               capsys)
    assert_one_line(code, err, 2, message)
    assert snapshot(earlier_run) == before


def test_a_data_root_that_is_a_file_is_refused(tmp_path, capsys):
    a_file = tmp_path / 'fashion-mnist.gz'
    a_file.write_bytes(b'')
    code, err = run_in_process(lenet_chapter.main, ['--data-root', str(a_file), '--ctx', 'cpu',
                                                    '--out', str(tmp_path / 'run')], capsys)
    assert_one_line(code, err, 2, 'is not a folder')


def test_an_out_that_is_a_file_is_refused(tmp_path, capsys):
    a_file = tmp_path / 'run'
    a_file.write_text('keep me')
    code, err = run_in_process(lenet_chapter.main, ['--out', str(a_file), '--ctx', 'cpu'],
                               capsys)
    assert_one_line(code, err, 2, f'cannot write to --out {a_file}')
    assert a_file.read_text() == 'keep me'


def test_an_empty_data_root_is_one_line_and_no_other_copy_is_used(tmp_path, earlier_run):
    """The run reaches the data: exit 1 from the chapter's handler, the earlier
    run's files untouched, and the real data elsewhere on this machine not used."""
    empty = tmp_path / 'empty'
    empty.mkdir()
    before = snapshot(earlier_run)
    result, _ = run_program('chapters.lenet', '--data-root', str(empty), '--ctx', 'cpu',
                            '--epochs', '1', '--out', str(earlier_run))
    assert_one_line(result.returncode, result.stderr, 1,
                    f'error: Fashion-MNIST not found in {empty} (download into {empty} failed')
    assert snapshot(earlier_run) == before
    assert 'epoch' not in result.stdout


def test_bad_values_through_the_whole_program(earlier_run):
    """One subprocess per kind of refusal, as a user meets it."""
    before = snapshot(earlier_run)
    result, _ = run_program('chapters.lenet', '--resize', '100000', '--out', str(earlier_run))
    assert_one_line(result.returncode, result.stderr, 2, '--resize: 100000 is above 1024')
    assert snapshot(earlier_run) == before


# Library calls ------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, message', [
    (dict(batch_size=0), 'batch_size must be a positive integer, got 0'),
    (dict(batch_size=8, resize=100000), 'resize 100000 is above 1024'),
    (dict(batch_size=8, seed=-1), 'seed must be a whole number in 0..4294967295, got -1'),
    (dict(batch_size=8, seed=2 ** 32), 'seed must be a whole number in 0..4294967295'),
    (dict(batch_size=8, num_train=0), 'subset size must be a positive integer, got 0'),
    (dict(batch_size=8, num_train=70000), 'a class-balanced subset of 70000 needs'),
    (dict(batch_size=8, num_parts=3, part_index=5), 'part 5 of 3 does not exist'),
])
def test_bad_library_arguments_are_one_line_value_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        load_data_fashion_mnist(**kwargs)
    assert message in str(info.value) and '\n' not in str(info.value)


def test_a_missing_library_root_is_one_line_and_searches_nowhere_else(tmp_path):
    from d2lnets.data.sources import DataNotFoundError
    with pytest.raises(DataNotFoundError) as info:
        load_data_fashion_mnist(8, root=str(tmp_path / 'missing'), download=False)
    assert str(info.value).startswith(f'Fashion-MNIST not found in {tmp_path / "missing"} (')
    assert '\n' not in str(info.value)


def test_image_batches_refuse_a_resize_that_would_wrap_inside_mxnet():
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    with pytest.raises(ValueError, match='resize 100000 is above 1024'):
        ImageBatches(images, np.zeros(2), 2, resize=100000)


def test_an_unknown_model_names_the_valid_ones():
    with pytest.raises(UnknownModelError) as info:
        get_model('nope')
    assert "unknown model 'nope'; valid names: " in str(info.value)
    assert '\n' not in str(info.value)


@pytest.mark.parametrize('shape', [(1, 1, 0, 0), (1, 1, -28, 28), 'abc', (), (1, 1, 2.5, 28)])
def test_print_layer_shapes_refuses_a_shape_that_is_not_one(shape):
    with pytest.raises(ValueError) as info:
        print_layer_shapes(lenet(), shape)
    assert 'is not a tuple of positive whole numbers' in str(info.value)


def test_print_layer_shapes_names_the_layer_an_input_is_too_small_for():
    with pytest.raises(ValueError) as info:
        print_layer_shapes(lenet(), (1, 1, 5, 5))
    message = str(info.value)
    assert message.startswith('conv') and 'does not accept input of shape' in message
    assert 'Traceback' not in message and '\n' not in message


def test_first_line_of_an_mxnet_error_skips_its_stack():
    err = RuntimeError('Traceback (most recent call last):\n  File "../src/x.cc", line 1\n'
                       'MXNetError: Check failed: something is wrong')
    assert _messages.first_line(err) == 'MXNetError: Check failed: something is wrong'
    assert _messages.first_line(ValueError('plain\nsecond')) == 'plain'
    assert _messages.first_line(KeyError()) == 'KeyError'


# Image folders ------------------------------------------------------------------

def test_one_class_is_refused_not_trained_to_accuracy_one(tmp_path, capsys):
    data = split_folder(tmp_path / 'data', {'cat': 3})
    out = tmp_path / 'out'
    code, err = run_in_process(finetune_chapter.main, [str(data), '--model', 'resnet18',
                                                       '--ctx', 'cpu', '--out', str(out)], capsys)
    assert_one_line(code, err, 2, 'holds one class (cat): there is nothing to tell apart')
    assert not os.path.exists(out / 'best.params')


def test_an_empty_class_is_refused(tmp_path, capsys):
    data = split_folder(tmp_path / 'data', {'cat': 3, 'dog': 2})
    for image in (data / 'train' / 'dog').iterdir():
        image.unlink()
    code, err = run_in_process(finetune_chapter.main, [str(data), '--ctx', 'cpu', '--out',
                                                       str(tmp_path / 'out')], capsys)
    assert_one_line(code, err, 2, 'class dog in')
    assert 'has no usable image' in err


@pytest.mark.parametrize('argv, message', [
    (['--workers', '-3'], '--workers: -3 is negative'),
    (['--workers', '1000'], '--workers: 1000 is above 64'),
    (['--lr', 'inf'], '--lr: inf is not a finite number'),
    (['--seed', '-1'], '--seed: -1 is not in 0..4294967295'),
    (['--pretrained', '/nonexistent.params'], '--pretrained /nonexistent.params is not a file'),
    (['--model', 'nope'], "unknown model 'nope'"),
])
def test_bad_finetune_options_are_one_line(argv, message, tmp_path, capsys):
    data = split_folder(tmp_path / 'data', {'cat': 2, 'dog': 2})
    code, err = run_in_process(finetune_chapter.main, [str(data), *argv, '--ctx', 'cpu',
                                                       '--out', str(tmp_path / 'out')], capsys)
    assert_one_line(code, err, 2, message)


def test_a_finetune_data_folder_that_is_missing_or_a_file(tmp_path, capsys):
    code, err = run_in_process(finetune_chapter.main, ['/nonexistent', '--ctx', 'cpu'], capsys)
    assert_one_line(code, err, 2, '/nonexistent/train is not a folder')
    (tmp_path / 'a-file').write_text('x')
    code, err = run_in_process(finetune_chapter.main, [str(tmp_path / 'a-file'), '--ctx', 'cpu'],
                               capsys)
    assert_one_line(code, err, 2, 'a-file/train is not a folder')


def broken_files(folder):
    """A zero-byte, a cut-off and a mislabelled image in `folder`; returns their names."""
    (folder / 'empty.jpg').write_bytes(b'')
    whole = (folder / '0.jpg').read_bytes()
    (folder / 'cut.jpg').write_bytes(whole[:len(whole) // 2])
    (folder / 'text.png').write_text('not an image')
    return {'empty.jpg': 'is empty (0 bytes)',
            'cut.jpg': 'is a cut-off JPEG (no end-of-image marker)',
            'text.png': 'is not a JPEG, PNG or BMP image'}


def test_broken_images_are_skipped_and_counted_never_trained_on(tmp_path):
    root = class_folder(tmp_path / 'photos', {'cat': 2, 'dog': 2})
    expected = broken_files(root / 'cat')
    dataset = image_folder.ImageFolderDataset(str(root))
    assert len(dataset) == 4
    assert {os.path.basename(path): why for path, why in dataset.skipped} == expected
    assert all(os.path.basename(path) not in expected for path, _ in dataset.items)
    note = image_folder.skipped_report(str(root), dataset.skipped)
    assert note.startswith(f'skipped 3 unreadable image file(s) in {root}: ')
    assert note.endswith(', and 2 more; fix or remove them')


def test_the_split_command_skips_broken_images_with_a_count(tmp_path, capsys):
    root = class_folder(tmp_path / 'photos', {'cat': 3, 'dog': 2})
    broken_files(root / 'cat')
    image_folder.main([str(root), str(tmp_path / 'split')])
    out = capsys.readouterr().out
    assert 'skipped 3 unreadable image file(s)' in out
    assert '5 images in' not in out and '3 images in' in out  # 3 train, 2 val
    kept = snapshot(tmp_path / 'split')
    assert not any(name.endswith(('empty.jpg', 'cut.jpg', 'text.png')) for name in kept)


@pytest.mark.parametrize('counts, extra, message', [
    ({'cat': 3}, [], 'holds one class (cat)'),
    ({'cat': 3, 'dog': 1}, [], 'class dog in'),
    ({'cat': 3, 'dog': 0}, [], 'class dog in'),
    ({'cat': 3, 'dog': 3}, ['--val', 'nan'], 'val fraction nan must lie between 0 and 1'),
    ({'cat': 3, 'dog': 3}, ['--seed', '-2'], '--seed: -2 is not in 0..4294967295'),
])
def test_the_split_command_refuses_what_cannot_train(counts, extra, message, tmp_path, capsys):
    root = class_folder(tmp_path / 'photos', counts)
    code, err = run_in_process(image_folder.main, [str(root), str(tmp_path / 'split'), *extra],
                               capsys)
    assert code in (1, 2)
    assert_one_line(code, err, code, message)
    assert not os.path.exists(tmp_path / 'split' / 'classes.txt')


def test_the_split_command_refuses_a_target_that_is_a_file(tmp_path, capsys):
    root = class_folder(tmp_path / 'photos', {'cat': 2, 'dog': 2})
    (tmp_path / 'a-file').write_text('keep me')
    code, err = run_in_process(image_folder.main, [str(root), str(tmp_path / 'a-file')], capsys)
    assert_one_line(code, err, 1, 'a-file is a file; give a new folder')
    assert (tmp_path / 'a-file').read_text() == 'keep me'


@pytest.mark.slow
def test_an_image_that_fails_in_a_loader_process_is_one_line_and_keeps_nothing_lost(tmp_path):
    """An image that passes the byte checks but does not decode, read by a
    loader process: one line, exit 1, no traceback."""
    data = split_folder(tmp_path / 'data', {'cat': 2, 'dog': 2})
    (data / 'train' / 'cat' / '1.jpg').write_bytes(b'\xff\xd8 damaged inside \xff\xd9')
    result, _ = run_program('chapters.finetune', str(data), '--model', 'googlenet_cifar10',
                            '--ctx', 'cpu', '--epochs', '1', '--batch-size', '2',
                            '--workers', '1', '--out', str(tmp_path / 'out'), timeout=300)
    assert_one_line(result.returncode, result.stderr, 1, '1.jpg cannot be read as an image')


# predict ------------------------------------------------------------------------

@pytest.fixture
def classes_file(tmp_path):
    path = tmp_path / 'classes.txt'
    path.write_text('cat\ndog\n')
    return path


def test_predict_with_nothing_to_predict(tmp_path, classes_file, capsys):
    (tmp_path / 'empty').mkdir()
    code, err = run_in_process(predict.main, ['--model', 'resnet18', '--params', 'x.params',
                                              '--classes', str(classes_file),
                                              str(tmp_path / 'empty')], capsys)
    assert_one_line(code, err, 2, f'no image to predict in {tmp_path / "empty"}')


@pytest.mark.parametrize('argv, message', [
    (['--params', '/nonexistent.params'], '--params /nonexistent.params is not a file'),
    (['--params', 'P', '--top', '0'], '--top: 0 is not positive'),
    (['--params', 'P', '--model', 'nope'], "unknown model 'nope'"),
    (['--params', 'P', 'IMAGE', '/nonexistent.jpg'], '/nonexistent.jpg does not exist'),
])
def test_bad_predict_input_is_one_line(argv, message, tmp_path, classes_file, capsys):
    write_image(tmp_path / 'photo.jpg')
    params = tmp_path / 'p.params'
    params.write_bytes(b'')
    argv = [str(params) if a == 'P' else str(tmp_path / 'photo.jpg') if a == 'IMAGE' else a
            for a in argv]
    argv = (['--model', 'resnet18'] if '--model' not in argv else []) + argv
    if not any(a.endswith('.jpg') for a in argv):
        argv.append(str(tmp_path / 'photo.jpg'))
    code, err = run_in_process(predict.main, ['--classes', str(classes_file), *argv], capsys)
    assert_one_line(code, err, 2, message)


def test_predict_through_the_whole_program(tmp_path, classes_file):
    (tmp_path / 'empty').mkdir()
    result, _ = run_program('d2lnets.inference.predict', '--model', 'resnet18', '--params',
                            '/nonexistent.params', '--classes', str(classes_file),
                            str(tmp_path / 'empty'))
    assert_one_line(result.returncode, result.stderr, 2, 'no image to predict')


# The launcher ---------------------------------------------------------------------

@pytest.mark.parametrize('argv, message', [
    (['-n', '1', '--', '/nonexistent/exe'], 'worker command /nonexistent/exe not found'),
    (['-n', '1', '--', sys.executable, '/nonexistent/worker.py'],
     'worker script /nonexistent/worker.py not found'),
    (['-n', '1', '--', 'no-such-program-d2lnets'], 'no-such-program-d2lnets not found'),
    (['-n', '100000', '--', 'true'], '-n/--num-workers: 100000 is above 256'),
    (['-n', 'two', '--', 'true'], "-n/--num-workers: 'two' is not a whole number"),
    (['-n', '1', '--port', '99999', '--', 'true'], '--port: 99999 is above 65535'),
    (['-n', '1', '--timeout', 'nan', '--', 'true'], '--timeout: nan is not a finite number'),
    (['-n', '1', '--join-timeout', '0', '--', 'true'], '--join-timeout: 0.0 is not positive'),
])
def test_a_launch_that_cannot_start_is_one_line(argv, message, capsys):
    code, err = run_in_process(launch.main, argv, capsys)
    assert_one_line(code, err, 2, message)


WORKER_LEAVES_FIRST = '''
import os, sys
try:
    os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL))
except FileExistsError:
    import mxnet as mx
    mx.kv.create('dist_sync')  # waits for the worker that left
'''


def launcher_processes(tag):
    found = subprocess.run(['pgrep', '-f', tag], capture_output=True, text=True)
    return found.stdout.split()


def test_a_worker_that_exits_0_before_joining_ends_the_job(tmp_path):
    tag = f'd2lnets-fault-{os.getpid()}-early'
    script = tmp_path / f'{tag}.py'
    script.write_text(WORKER_LEAVES_FIRST)
    result, seconds = run_program('d2lnets.training.launch', '-n', '2', '--timeout', '100',
                                  '--', sys.executable, str(script), str(tmp_path / 'flag'))
    assert_one_line(result.returncode, result.stderr, 1,
                    'exited with code 0 before every worker had joined the parameter server')
    assert seconds < 90  # ended by the launcher, not by --timeout
    assert launcher_processes(tag) == []


def test_a_worker_that_never_joins_is_ended_at_the_join_timeout(tmp_path):
    tag = f'd2lnets-fault-{os.getpid()}-never'
    script = tmp_path / f'{tag}.py'
    script.write_text('import time\ntime.sleep(600)\n')
    result, seconds = run_program('d2lnets.training.launch', '-n', '2', '--join-timeout', '3',
                                  '--', sys.executable, str(script))
    assert_one_line(result.returncode, result.stderr, launch.EXIT_TIMEOUT,
                    'did not all join the parameter server within --join-timeout 3 s')
    assert seconds < 60
    assert launcher_processes(tag) == []
