"""CIFAR-10 from generated pickle files, image folders and their split, and
the augmentations, on small generated data."""
import hashlib
import os
import pickle
import tarfile

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from d2lnets.data import augment

from d2lnets.data import cifar10

from d2lnets.data import image_folder
from d2lnets.data.fashion_mnist import DataNotFoundError


# CIFAR-10 ---------------------------------------------------------------------

def write_cifar(directory, per_batch=4, seed=0):
    """CIFAR-format batches of random images; returns (checksums, train data rows)."""
    rng = np.random.default_rng(seed)
    folder = directory / cifar10.FOLDER
    folder.mkdir(parents=True)
    checksums, rows = {}, []
    for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        if name in cifar10.TRAIN_FILES:
            rows.append(data)
        (folder / name).write_bytes(pickle.dumps({b'data': data, b'labels': labels}))
    meta = {b'label_names': [n.encode() for n in ('airplane', 'automobile', 'bird', 'cat',
                                                   'deer', 'dog', 'frog', 'horse', 'ship',
                                                   'truck')]}
    (folder / cifar10.META_FILE).write_bytes(pickle.dumps(meta))
    for path in folder.iterdir():
        checksums[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return checksums, np.concatenate(rows)


def test_cifar_pickles_load_as_hwc_images(tmp_path):
    checksums, rows = write_cifar(tmp_path)
    data = cifar10.load_cifar10(tmp_path, download=False, checksums=checksums)
    images, labels = data['train']
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (20,) and labels.dtype == np.int64
    assert data['test'][0].shape == (4, 32, 32, 3)
    assert data['classes'][0] == 'airplane' and len(data['classes']) == 10
    # A row is the red plane, then green, then blue, each row-major 32x32.
    y, x = 5, 7
    assert list(images[3, y, x]) == [rows[3, c * 1024 + y * 32 + x] for c in range(3)]


def test_a_damaged_cifar_file_is_refused_before_unpickling(tmp_path):
    checksums, _ = write_cifar(tmp_path)
    (tmp_path / cifar10.FOLDER / 'data_batch_2').write_bytes(b'not a pickle')
    with pytest.raises(cifar10.CorruptFileError, match='data_batch_2: checksum mismatch'):
        cifar10.load_cifar10(tmp_path, download=False, checksums=checksums)


def test_real_checksums_refuse_generated_files(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(cifar10.CorruptFileError, match='not CIFAR-10'):
        cifar10.load_cifar10(tmp_path, download=False)


def test_no_cifar_and_no_download_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    with pytest.raises(DataNotFoundError) as info:
        cifar10.load_cifar10(tmp_path / 'empty', download=False)
    message = str(info.value)
    assert '\n' not in message and 'download disabled' in message and 'unpack' in message


def test_cifar_downloads_checks_and_unpacks_the_archive(tmp_path, mirror_server, monkeypatch):
    source = tmp_path / 'source'
    checksums, _ = write_cifar(source)
    archive = tmp_path / 'cifar-10-python.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(source / cifar10.FOLDER, arcname=cifar10.FOLDER)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    url = mirror_server + archive.name
    with pytest.raises(DataNotFoundError, match='md5'):
        cifar10.load_cifar10(url=url, checksums=checksums, archive_md5='0' * 32)
    data = cifar10.load_cifar10(url=url, checksums=checksums, archive_md5=md5)
    assert data['train'][0].shape == (20, 32, 32, 3)
    assert (tmp_path / 'home' / 'datasets' / 'cifar10' / cifar10.FOLDER / 'test_batch').exists()
    assert not [p for p in (tmp_path / 'home' / 'datasets' / 'cifar10').iterdir()
                if p.name.endswith('.part')]


# Image folders ----------------------------------------------------------------

def make_folder(root, sizes, seed=0):
    rng = np.random.default_rng(seed)
    for name, count in sizes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f'{i:03d}.png')
    return root


def files_in(folder):
    return {os.path.relpath(os.path.join(d, f), folder)
            for d, _, files in os.walk(folder) for f in files}


def test_split_is_deterministic_disjoint_and_complete(tmp_path):
    source = make_folder(tmp_path / 'photos', {'daisy': 20, 'rose': 5, 'tulip': 2})
    counts = image_folder.split_image_folder(source, tmp_path / 'a', seed=3)
    image_folder.split_image_folder(source, tmp_path / 'b', seed=3)
    image_folder.split_image_folder(source, tmp_path / 'c', seed=4)
    # daisy 2, rose and tulip 1 each (at least one)
    assert counts == {'train': 23, 'val': 4, 'skipped': []}
    train, val = files_in(tmp_path / 'a' / 'train'), files_in(tmp_path / 'a' / 'val')
    assert not train & val
    assert train | val == files_in(source)
    assert val == files_in(tmp_path / 'b' / 'val')
    assert val != files_in(tmp_path / 'c' / 'val')
    assert image_folder.read_class_index(tmp_path / 'a' / 'classes.txt') == ['daisy', 'rose',
                                                                          'tulip']


def test_split_command_and_its_errors(tmp_path, capsys):
    source = make_folder(tmp_path / 'photos', {'cat': 4, 'dog': 4})
    image_folder.main([str(source), str(tmp_path / 'split'), '--val', '0.25', '--link'])
    assert '6 images in' in capsys.readouterr().out
    assert os.stat(tmp_path / 'split' / 'val' / 'cat' / next(
        iter(os.listdir(tmp_path / 'split' / 'val' / 'cat')))).st_nlink == 2
    with pytest.raises(SystemExit, match='exists and is not empty'):
        image_folder.main([str(source), str(tmp_path / 'split')])
    (tmp_path / 'empty' / 'cat').mkdir(parents=True)
    with pytest.raises(SystemExit, match='holds no usable images'):
        image_folder.main([str(tmp_path / 'empty'), str(tmp_path / 'out')])
    with pytest.raises(SystemExit, match='between 0 and 1'):
        image_folder.main([str(source), str(tmp_path / 'out'), '--val', '1.5'])


def test_dataset_reads_rgb_images_and_names_an_unreadable_one(tmp_path):
    source = make_folder(tmp_path / 'photos', {'cat': 2, 'dog': 1})
    dataset = image_folder.ImageFolderDataset(str(source))
    image, label = dataset[2]
    assert dataset.classes == ['cat', 'dog'] and label == 1
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    expected = np.asarray(Image.open(source / 'dog' / '000.png'))
    np.testing.assert_array_equal(image.asnumpy(), expected)
    (source / 'dog' / 'cut.jpg').write_bytes(b'\xff\xd8 a JPEG without its end')
    dataset = image_folder.ImageFolderDataset(str(source))
    assert len(dataset) == 3
    assert dataset.skipped == [(str(source / 'dog' / 'cut.jpg'),
                                'is a cut-off JPEG (no end-of-image marker)')]
    (source / 'dog' / '000.png').write_bytes(b'\xff\xd8 damaged inside \xff\xd9')
    with pytest.raises(image_folder.ImageFolderError, match='000.png cannot be read'):
        dataset[2]


# Augmentations ----------------------------------------------------------------

def photo(height=300, width=400, seed=0):
    rng = np.random.default_rng(seed)
    return mx.nd.array(rng.integers(0, 256, size=(height, width, 3)), dtype='uint8')


def test_scale_jitter_rescales_the_shorter_side_into_its_range_then_crops(monkeypatch):
    sides, resize_short = [], augment.image.resize_short

    def spy(img, size):
        sides.append(size)
        return resize_short(img, size)

    monkeypatch.setattr(augment.image, 'resize_short', spy)
    jitter = augment.ScaleJitter(256, 512, 224, seed=0)
    for _ in range(20):
        assert jitter(photo()).shape == (224, 224, 3)
    assert all(256 <= side <= 512 for side in sides) and len(set(sides)) > 10
    with pytest.raises(ValueError, match='crop size <= smin <= smax'):
        augment.ScaleJitter(200, 512, 224)


def test_rgb_shift_moves_every_pixel_by_one_colour_offset_within_range():
    img = mx.nd.full((8, 8, 3), 128, dtype='uint8')
    mx.random.seed(0)
    out = augment.RGBShift(alpha=0.1)(img).asnumpy()
    assert out.min() >= 0 and out.max() <= 255
    offsets = out.reshape(-1, 3) - 128
    np.testing.assert_allclose(offsets, offsets[:1].repeat(64, axis=0), atol=1e-4)
    assert np.abs(offsets[0]).max() > 0.01


@pytest.mark.parametrize('transform', [augment.random_resized_crop_flip(),
                                       augment.vgg_paper_train(), augment.evaluation()])
def test_pipelines_give_normalized_224_tensors(transform):
    out = transform(photo()).asnumpy()
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    lowest = (0 - np.array(augment.IMAGENET_MEAN)) / np.array(augment.IMAGENET_STD)
    highest = (1 - np.array(augment.IMAGENET_MEAN)) / np.array(augment.IMAGENET_STD)
    assert (out.min(axis=(1, 2)) >= lowest - 1e-5).all()
    assert (out.max(axis=(1, 2)) <= highest + 1e-5).all()


def test_googlenet_chapter_trains_on_cifar10(tmp_path, monkeypatch, capsys):
    from chapters import googlenet as chapter
    checksums, _ = write_cifar(tmp_path / 'cifar', per_batch=8)
    for name, md5 in checksums.items():
        monkeypatch.setitem(cifar10.CHECKSUMS, name, md5)
    out = tmp_path / 'run'
    chapter.main(['--dataset', 'cifar10', '--data-root', str(tmp_path / 'cifar'), '--resize',
                  '32', '--epochs', '1', '--batch-size', '8', '--workers', '0', '--ctx', 'cpu',
                  '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'epoch 1, loss' in printed
    history = (out / 'history.json').read_text()
    assert '"num_train": 40' in history and '"num_test": 8' in history
