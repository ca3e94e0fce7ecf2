"""CIFAR-10 from generated pickle files, image folders and their split, and
the augmentations, on small generated data."""
import hashlib
import io
import os
import pickle
import tarfile
import time

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


def spy_on_resize_short(monkeypatch):
    """The shorter sides augment asks `image.resize_short` for, as a list that grows."""
    sides, resize_short = [], augment.image.resize_short

    def spy(image, size):
        sides.append(size)
        return resize_short(image, size)

    monkeypatch.setattr(augment.image, 'resize_short', spy)
    return sides


def test_scale_jitter_rescales_the_shorter_side_into_its_range_then_crops(monkeypatch):
    sides = spy_on_resize_short(monkeypatch)
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


@pytest.mark.parametrize('pipeline', ['random_resized_crop_flip', 'vgg_paper_train',
                                      'evaluation'])
def test_pipelines_give_normalized_224_tensors(pipeline):
    # Built in the test, not at collection, so that mutation testing sees it built.
    out = getattr(augment, pipeline)()(photo()).asnumpy()
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


# load_data_cifar10 on arrays standing in for load_cifar10's (mutation testing,
# docs/results.md) -----------------------------------------------------------------

def fake_cifar(monkeypatch, num_train=40, num_test=20):
    """Make load_cifar10 return small arrays; image i's red plane is all i (its
    id, whatever the crop or flip), its labels i % 10. Returns (arrays, calls)."""
    rng = np.random.default_rng(0)
    arrays, calls = {'classes': [str(i) for i in range(10)]}, []
    for split, n in (('train', num_train), ('test', num_test)):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        images[:, :, :, 0] = np.arange(n)[:, None, None]
        arrays[split] = images, np.arange(n, dtype=np.int64) % 10

    def load(root=None, download=True):
        calls.append((root, download))
        return arrays

    monkeypatch.setattr(cifar10, 'load_cifar10', load)
    return arrays, calls


def ids(loader):
    """The ids of the images of one pass, in the order served, and the batches."""
    batches = [(X.asnumpy(), y.asnumpy()) for X, y in loader]
    return np.concatenate([np.rint(X[:, 0, 0, 0] * 255) for X, _ in batches]).astype(int), batches


def test_cifar_loaders_take_subsets_and_shards_of_what_load_cifar10_gives(monkeypatch):
    from d2lnets.data.batches import balanced_subset, load_data_cifar10
    arrays, calls = fake_cifar(monkeypatch)
    labels = arrays['train'][1]
    train, test = load_data_cifar10(4, root='/somewhere', download=False, num_train=20,
                                    num_test=10, seed=4, num_parts=2, part_index=1,
                                    num_workers=0)
    assert calls == [('/somewhere', False)]
    assert (train.num_examples, test.num_examples) == (10, 10)
    assert sorted(ids(train)[0]) == sorted(balanced_subset(labels, 20, 4)[1::2])
    assert list(ids(test)[0]) == list(balanced_subset(arrays['test'][1], 10, 4))
    # By default: seed 0, part 0 of a shard, every image, download allowed.
    train, _ = load_data_cifar10(4, num_train=20, num_parts=2, num_workers=0)
    assert calls[-1] == (None, True)
    assert sorted(ids(train)[0]) == sorted(balanced_subset(labels, 20, 0)[0::2])
    train, test = load_data_cifar10(4, num_workers=0)
    assert (train.num_examples, test.num_examples) == (40, 20)


def test_cifar_training_batches_are_shuffled_and_flipped_test_batches_in_order(monkeypatch):
    from d2lnets.data.batches import load_data_cifar10
    arrays, _ = fake_cifar(monkeypatch)
    np.random.seed(0)  # the loader's sampler shuffles with NumPy's global generator
    train, test = load_data_cifar10(8, crop_scale=(1.0, 1.0), num_workers=0)
    order, batches = ids(train)
    assert sorted(order) == list(range(40)) and list(order) != list(range(40))
    images, labels = arrays['train']
    flipped = 0
    for X, y in batches:
        assert X.shape[1:] == (3, 32, 32)
        for x, label in zip(X, y):
            image = images[int(round(x[0, 0, 0] * 255))].transpose(2, 0, 1) / 255
            assert label == labels[int(round(x[0, 0, 0] * 255))]
            same = np.allclose(x, image, atol=1e-6)  # crop of the whole image: no crop
            flipped += not same
            assert same or np.allclose(x, image[:, :, ::-1], atol=1e-6)
    assert 0 < flipped < 40
    order, batches = ids(test)
    assert list(order) == list(range(20))
    np.testing.assert_allclose(np.concatenate([X for X, _ in batches]),
                               arrays['test'][0].transpose(0, 3, 1, 2) / 255, atol=1e-6)


def test_cifar_resize_applies_to_training_and_test_images(monkeypatch):
    from mxnet.gluon.data.vision import transforms

    from d2lnets.data.batches import load_data_cifar10
    arrays, _ = fake_cifar(monkeypatch)
    train, test = load_data_cifar10(8, resize=40, num_workers=0)
    assert next(iter(train))[0].shape == (8, 3, 40, 40)
    X, _ = next(iter(test))
    expected = transforms.ToTensor()(transforms.Resize(40)(mx.nd.array(arrays['test'][0][0],
                                                                         dtype='uint8')))
    np.testing.assert_allclose(X[0].asnumpy(), expected.asnumpy(), atol=1e-6)


def test_cifar_loaders_use_the_worker_count_given_else_two(monkeypatch):
    from d2lnets.data.batches import load_data_cifar10
    fake_cifar(monkeypatch)
    assert [loader._num_workers for loader in load_data_cifar10(8, num_workers=1)] == [1, 1]
    assert [loader._num_workers for loader in load_data_cifar10(8)] == [2, 2]


@pytest.mark.parametrize('kwargs, message', [
    (dict(batch_size=0), 'batch_size must be a positive integer, got 0'),
    (dict(batch_size=8, num_workers=-1),
     'num_workers must be 0 (load in this process) or more, got -1'),
    (dict(batch_size=8, num_workers=2.5),
     'num_workers must be 0 (load in this process) or more, got 2.5'),
    (dict(batch_size=8, num_workers=True),
     'num_workers must be 0 (load in this process) or more, got True'),
])
def test_bad_cifar_loader_arguments_are_refused_in_one_line(monkeypatch, kwargs, message):
    from d2lnets.data.batches import load_data_cifar10
    _, calls = fake_cifar(monkeypatch)
    with pytest.raises(ValueError) as info:
        load_data_cifar10(**kwargs)
    assert str(info.value) == message and calls == []


# Augmentations pinned down by mutation testing (docs/results.md) ----------------

def blocks(block):
    yield block
    for child in block._children.values():
        yield from blocks(child)


def test_the_vgg_papers_defaults_s_from_256_to_512_crop_224_alpha_0_1():
    jitter = augment.ScaleJitter()
    assert (jitter.smin, jitter.smax, jitter.size) == (256, 512, 224)
    assert augment.RGBShift()._lighting._alpha == 0.1
    found = {type(b).__name__: b for b in blocks(augment.vgg_paper_train())}
    jitter = found['ScaleJitter']
    assert (jitter.smin, jitter.smax, jitter.size) == (256, 512, 224)
    assert found['RandomLighting']._alpha == 0.1
    small = augment.vgg_paper_train(smin=40, smax=50, size=32, alpha=0.2)
    assert small(photo(60, 80)).shape == (3, 32, 32)
    assert augment.random_resized_crop_flip()(photo()).shape == (3, 224, 224)


def test_scale_jitter_draws_every_scale_and_every_crop_position_and_follows_its_seed(
        monkeypatch):
    """A 3 x 5 image at S = 3 (no rescaling) and 2 x 2 crops: the crop starts at
    any of rows 0-1 and columns 0-3; S is drawn from smin..smax, both included."""
    pixels = (10 * np.arange(3)[:, None] + np.arange(5)).astype(np.uint8)
    img = mx.nd.array(np.repeat(pixels[:, :, None], 3, axis=2), dtype='uint8')
    jitter = augment.ScaleJitter(3, 3, 2, seed=0)
    corners = {int(jitter(img)[0, 0, 0].asscalar()) for _ in range(200)}
    assert corners == {10 * top + left for top in (0, 1) for left in range(4)}
    first = [augment.ScaleJitter(256, 512, 224, seed=3)(photo()).asnumpy() for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])
    sides = spy_on_resize_short(monkeypatch)
    jitter = augment.ScaleJitter(2, 4, 2, seed=0)
    assert all(jitter(img).shape == (2, 2, 3) for _ in range(100))
    assert set(sides) == {2, 3, 4}


def test_scale_jitter_accepts_a_single_scale_and_a_crop_as_large_as_it():
    assert augment.ScaleJitter(224, 224, 224)(photo()).shape == (224, 224, 3)
    assert augment.ScaleJitter(256, 256, 224)(photo()).shape == (224, 224, 3)


def test_rgb_shift_clips_to_0_and_255_exactly():
    img = mx.nd.array(np.tile(np.array([0, 255], dtype=np.uint8)[:, None, None], (1, 4, 3)),
                      dtype='uint8')  # a row of black, a row of white
    ups = downs = 0
    for seed in range(6):
        mx.random.seed(seed)
        offset = mx.gluon.data.vision.transforms.RandomLighting(1.0)(
            mx.nd.zeros((1, 1, 3))).asnumpy().reshape(3)
        mx.random.seed(seed)
        out = augment.RGBShift(alpha=1.0)(img).asnumpy()
        np.testing.assert_allclose(out, np.clip(img.asnumpy() + offset, 0, 255), atol=1e-4)
        ups, downs = ups + (offset > 0.5).any(), downs + (offset < -0.5).any()
    assert ups and downs  # both ends were clipped


def test_to_input_normalizes_with_imagenets_mean_and_deviation():
    img = photo(5, 6)
    expected = ((img.asnumpy().astype(np.float64) / 255 - augment.IMAGENET_MEAN)
                / augment.IMAGENET_STD).transpose(2, 0, 1)
    np.testing.assert_allclose(augment.to_input()(img).asnumpy(), expected, atol=1e-5)


def test_evaluation_resizes_the_shorter_side_to_256_keeping_the_ratio_then_crops_the_centre():
    img = photo(300, 400)
    resized = mx.image.imresize(img, 341, 256)  # 400 x 256 / 300 = 341.3
    centre = resized[16:240, 58:282]
    expected = augment.to_input()(centre).asnumpy()
    np.testing.assert_allclose(augment.evaluation()(img).asnumpy(), expected, atol=1e-5)


# Image folders pinned down by mutation testing (docs/results.md) ----------------

def png_bytes(width=3, height=2):
    import io
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(buffer, 'PNG')
    return buffer.getvalue()


def png_header(width, height, chunk=b'IHDR'):
    """A PNG signature, an IHDR chunk saying width x height, and an IEND chunk."""
    return (image_folder.PNG_SIGNATURE + (13).to_bytes(4, 'big') + chunk
            + width.to_bytes(4, 'big') + height.to_bytes(4, 'big') + bytes(9)
            + bytes(4) + image_folder.PNG_END)


def bmp(promised, size):
    return (b'BM' + promised.to_bytes(4, 'little') + b'\x07' * 10)[:size].ljust(size, b'\x00')


@pytest.mark.parametrize('content, problem', [
    (b'', 'is empty (0 bytes)'),
    (b'\xff\xd8' + bytes(range(256)) * 2 + b'\xff\xd9', None),
    (b'\xff\xd8 body \xff\xd9\x00\r\n\x00', None),
    (b'\xff\xd8 body \xff\xd9X', 'is a cut-off JPEG (no end-of-image marker)'),
    (b'\xff\xd8' + bytes(200), 'is a cut-off JPEG (no end-of-image marker)'),
    (png_bytes(), None),
    (png_bytes()[:-8], 'is a cut-off PNG (no IEND chunk)'),
    (png_header(24495, 24495), None),  # 1.8e9 values: decodable
    (png_header(30000, 30000), 'is a damaged PNG (header says 30000x30000)'),  # 2.7e9: not
    (png_header(0, 7), 'is a damaged PNG (header says 0x7)'),
    (png_header(5, 7, chunk=b'IDAT'), 'is a damaged PNG (header says 5x7)'),
    (bmp(6, 6), None),
    (bmp(100, 100), None),
    (bmp(1000, 100), 'is a cut-off BMP (100 of 1000 bytes)'),
    (bmp(0x0701, 7), 'is a cut-off BMP (7 of 1793 bytes)'),
    (b'not an image', 'is not a JPEG, PNG or BMP image'),
])
def test_image_problem_of_each_kind_of_file(tmp_path, content, problem):
    path = tmp_path / 'image.bin'
    path.write_bytes(content)
    assert image_folder.image_problem(str(path)) == problem


def test_list_images_messages_and_what_it_ignores(tmp_path):
    with pytest.raises(image_folder.ImageFolderError) as info:
        image_folder.list_images(str(tmp_path / 'missing'))
    assert str(info.value) == (f'{tmp_path / "missing"} is not a folder; give the folder that '
                               f'holds one sub-folder of images per class')
    root = make_folder(tmp_path / 'photos', {'cat': 2, 'dog': 0})
    (root / 'README.txt').write_text('not a class')
    with pytest.raises(image_folder.ImageFolderError) as info:
        image_folder.list_images(str(root))
    assert str(info.value) == (f'class dog in {root} has no usable image; add images or remove '
                               f'the folder {root / "dog"}')
    (root / 'dog' / 'empty.png').write_bytes(b'')
    with pytest.raises(image_folder.ImageFolderError) as info:
        image_folder.list_images(str(root))
    assert str(info.value) == (f'class dog in {root} has no usable image (1 unreadable skipped); '
                               f'add images or remove the folder {root / "dog"}')
    (root / 'dog' / 'one.png').write_bytes(png_bytes())
    classes, items, skipped = image_folder.list_images(str(root))
    assert classes == ['cat', 'dog'] and len(items) == 3 and len(skipped) == 1
    empty = tmp_path / 'empty'
    (empty / 'cat').mkdir(parents=True)
    (empty / 'cat' / 'a.jpg').write_bytes(b'')
    with pytest.raises(image_folder.ImageFolderError) as info:
        image_folder.list_images(str(empty))
    assert str(info.value) == (f'{empty} holds no usable images: expected {empty}/<class name>/'
                               f'<image> with extensions .jpg, .jpeg, .png, .bmp '
                               f'(1 unreadable skipped)')


def test_skipped_report_names_the_first_file_and_counts_the_rest():
    assert image_folder.skipped_report('/r', []) is None
    one = [('/r/a/1.jpg', 'is empty (0 bytes)')]
    assert image_folder.skipped_report('/r', one) == (
        'skipped 1 unreadable image file(s) in /r: /r/a/1.jpg is empty (0 bytes); '
        'fix or remove them')
    two = one + [('/r/b/2.png', 'is a cut-off PNG (no IEND chunk)')]
    assert image_folder.skipped_report('/r', two) == (
        'skipped 2 unreadable image file(s) in /r: /r/a/1.jpg is empty (0 bytes), and 1 more; '
        'fix or remove them')


def test_split_defaults_copy_with_seed_0_and_a_tenth_for_val(tmp_path):
    source = make_folder(tmp_path / 'photos', {'cat': 20, 'dog': 10})
    (tmp_path / 'a').mkdir()  # an existing empty folder is fine
    counts = image_folder.split_image_folder(source, tmp_path / 'a')
    assert counts == {'train': 27, 'val': 3, 'skipped': []}
    image_folder.split_image_folder(source, tmp_path / 'b', val_fraction=0.1, seed=0)
    assert files_in(tmp_path / 'a') == files_in(tmp_path / 'b')
    copied = tmp_path / 'a' / 'train' / 'cat' / sorted(os.listdir(tmp_path / 'a' / 'train'
                                                                  / 'cat'))[0]
    assert os.stat(copied).st_nlink == 1  # a copy, not a link
    for fraction in (0, 1):
        with pytest.raises(image_folder.ImageFolderError) as info:
            image_folder.split_image_folder(source, tmp_path / f'c{fraction}', fraction)
        assert str(info.value) == f'val fraction {fraction} must lie between 0 and 1'


def test_class_index_round_trip_and_its_errors(tmp_path):
    path = tmp_path / 'classes.txt'
    image_folder.write_class_index(path, ['hot dog ', 'BOX', 'x'])
    assert image_folder.read_class_index(path) == ['hot dog ', 'BOX', 'x']
    with pytest.raises(image_folder.ImageFolderError) as info:
        image_folder.read_class_index(tmp_path / 'missing.txt')
    assert str(info.value) == (f'cannot read the class index {tmp_path / "missing.txt"} '
                               f'(No such file or directory)')
    path.write_text('\n\n')
    with pytest.raises(image_folder.ImageFolderError) as info:
        image_folder.read_class_index(path)
    assert str(info.value) == f'the class index {path} names no class'


def test_dataset_keeps_its_root_and_applies_its_transform(tmp_path):
    source = make_folder(tmp_path / 'photos', {'cat': 1, 'dog': 1})
    dataset = image_folder.ImageFolderDataset(str(source), transform=augment.to_input())
    assert dataset.root == str(source)
    image, label = dataset[1]
    expected = augment.to_input()(image_folder.read_image(str(source / 'dog' / '000.png')))
    assert label == 1 and image.shape == (3, 40, 60)
    np.testing.assert_array_equal(image.asnumpy(), expected.asnumpy())
    (source / 'dog' / '000.png').write_bytes(b'\xff\xd8 damaged inside \xff\xd9')
    with pytest.raises(image_folder.ImageFolderError) as info:
        dataset[1]
    assert str(info.value) == (f'{source / "dog" / "000.png"} cannot be read as an image '
                               f'(MXNetError: Check failed: !res.empty(): Decoding failed. '
                               f'Invalid image file.); remove or replace it')


def test_split_command_help_output_and_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        image_folder.main(['--help'])
    assert info.value.code == 0
    out = ' '.join(capsys.readouterr().out.split())
    for text in ('usage: python -m d2lnets.data.image_folder [-h] [--val VAL] [--seed SEED] '
                 '[--link] source target',
                 'Split a folder of class sub-folders into train and val, and write the class '
                 'index.',
                 'source folder with one sub-folder of images per class',
                 'target new folder for train/, val/ and classes.txt',
                 '--val VAL fraction of each class for val (default: 0.1, i.e. 9:1)',
                 '--seed SEED seeds the split (default: 0)',
                 '--link hard-link the files instead of copying them'):
        assert text in out
    source = make_folder(tmp_path / 'photos', {'cat': 5, 'dog': 5})
    (source / 'dog' / 'empty.jpg').write_bytes(b'')
    image_folder.main([str(source), str(tmp_path / 'a')])
    target = tmp_path / 'a'
    assert capsys.readouterr().out.splitlines() == [
        f'skipped 1 unreadable image file(s) in {source}: {source / "dog" / "empty.jpg"} is '
        f'empty (0 bytes); fix or remove them',
        f'8 images in {target / "train"}, 2 in {target / "val"}; class index '
        f'{target / "classes.txt"}']
    image_folder.split_image_folder(source, tmp_path / 'b', seed=0)
    image_folder.main([str(source), str(tmp_path / 'c'), '--seed', '3'])
    image_folder.split_image_folder(source, tmp_path / 'd', seed=3)
    assert files_in(tmp_path / 'a') == files_in(tmp_path / 'b')
    assert files_in(tmp_path / 'c') == files_in(tmp_path / 'd') != files_in(tmp_path / 'a')
    (tmp_path / 'a-file').write_text('x')
    with pytest.raises(SystemExit) as info:
        image_folder.main([str(source), str(tmp_path / 'a-file' / 'split')])
    assert info.value.code == (
        f'python -m d2lnets.data.image_folder: error: cannot write '
        f'{tmp_path / "a-file" / "split"} (Not a directory: {tmp_path / "a-file" / "split"}); '
        f'give a folder you can write')


# CIFAR-10 files pinned down by mutation testing (docs/results.md) --------------

def test_cifar_search_places_and_a_root_that_is_the_folder_itself(tmp_path, monkeypatch):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    monkeypatch.delenv(cifar10.ENV_VAR, raising=False)
    cache = str(tmp_path / 'home' / 'datasets' / 'cifar10')
    assert cifar10.cache_dir() == cache
    assert cifar10.search_dirs() == [cache, os.path.join(cache, cifar10.FOLDER)]
    monkeypatch.setenv(cifar10.ENV_VAR, str(tmp_path / 'env'))
    assert cifar10.search_dirs() == [str(tmp_path / 'env'),
                                     str(tmp_path / 'env' / cifar10.FOLDER),
                                     cache, os.path.join(cache, cifar10.FOLDER)]
    assert cifar10.search_dirs('/r') == ['/r', os.path.join('/r', cifar10.FOLDER)]
    checksums, _ = write_cifar(tmp_path / 'data')
    data = cifar10.load_cifar10(str(tmp_path / 'data' / cifar10.FOLDER), download=False,
                                checksums=checksums)
    assert data['train'][0].shape == (20, 32, 32, 3)
    assert data['classes'] == ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
                               'horse', 'ship', 'truck']
    # Without a checksum table the files are read as they are.
    assert cifar10.load_cifar10(str(tmp_path / 'data'), download=False,
                                checksums=None)['test'][0].shape == (4, 32, 32, 3)


def test_cifar_messages_in_full(tmp_path, monkeypatch, mirror_server):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    monkeypatch.delenv(cifar10.ENV_VAR, raising=False)
    empty = tmp_path / 'empty'
    with pytest.raises(DataNotFoundError) as info:
        cifar10.load_cifar10(str(empty), download=False)
    assert str(info.value) == (
        f'CIFAR-10 not found in {empty}, {empty / cifar10.FOLDER} (download disabled). Fix: '
        f'unpack {cifar10.ARCHIVE_URL} so that cifar-10-batches-py/ lies in '
        f'{cifar10.cache_dir()} or in the directory given as root / $D2LNETS_CIFAR10.')
    url = mirror_server + 'missing.tar.gz'
    with pytest.raises(DataNotFoundError) as info:
        cifar10.load_cifar10(str(empty), url=url)
    assert f'({f"download into {empty} failed: File not found"}). Fix: unpack {url} so' \
        in str(info.value)
    checksums, _ = write_cifar(tmp_path / 'bad')
    path = tmp_path / 'bad' / cifar10.FOLDER / 'test_batch'
    expected = checksums['test_batch']
    path.write_bytes(b'other')
    with pytest.raises(cifar10.CorruptFileError) as info:
        cifar10.load_cifar10(str(tmp_path / 'bad'), download=False, checksums=checksums)
    assert str(info.value) == (f'{path}: checksum mismatch (md5 '
                               f'{hashlib.md5(b"other").hexdigest()}, expected {expected}): the '
                               f'file is damaged or not CIFAR-10; delete it')


def test_cifar_batches_whose_labels_do_not_match_are_refused(tmp_path):
    write_cifar(tmp_path)
    folder = tmp_path / cifar10.FOLDER
    batch = pickle.loads((folder / 'test_batch').read_bytes())
    batch[b'labels'].append(3)
    (folder / 'test_batch').write_bytes(pickle.dumps(batch))
    with pytest.raises(cifar10.CorruptFileError) as info:
        cifar10.load_cifar10(str(tmp_path), download=False, checksums=None)
    assert str(info.value) == f'{folder}: 4 images but 5 labels'
    del batch[b'labels']
    (folder / 'test_batch').write_bytes(pickle.dumps(batch))
    with pytest.raises(cifar10.CorruptFileError) as info:
        cifar10.load_cifar10(str(tmp_path), download=False, checksums=None)
    assert str(info.value) == f"{folder}: not CIFAR-10 batches (b'labels')"


def cifar_archive_with(tmp_path, extra):
    """(archive, checksums): a stand-in CIFAR-10 archive of its folder and one
    more small file stored under the member name `extra`."""
    source = tmp_path / 'source'
    checksums, _ = write_cifar(source)
    (source / 'extra.txt').write_text('not part of CIFAR-10')
    archive = tmp_path / 'cifar-10-python.tar.gz'
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(source / cifar10.FOLDER, arcname=cifar10.FOLDER)
        tar.add(source / 'extra.txt', arcname=extra)
    return archive, checksums


def test_a_cifar_archive_that_writes_outside_its_folder_is_refused(tmp_path, mirror_server,
                                                                   monkeypatch):
    """A member named FOLDER/../../x would land beside the root: tarfile's 'data'
    filter refuses it, and nothing is written outside the root."""
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    archive, checksums = cifar_archive_with(tmp_path, f'{cifar10.FOLDER}/../../escaped.txt')
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / 'root'
    with pytest.raises(DataNotFoundError, match=f'download into {root} failed: '):
        cifar10.load_cifar10(str(root), url=mirror_server + archive.name, checksums=checksums,
                             archive_md5=md5)
    assert not (tmp_path / 'escaped.txt').exists()


def test_cifar_download_into_the_root_unpacks_only_the_folder(tmp_path, mirror_server,
                                                              monkeypatch):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    archive, checksums = cifar_archive_with(tmp_path, 'stray.txt')
    url = mirror_server + archive.name
    root = tmp_path / 'root'
    with pytest.raises(DataNotFoundError) as info:
        cifar10.load_cifar10(str(root), url=url, checksums=checksums, archive_md5='0' * 32)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    assert f'download into {root} failed: {url}: md5 {md5}, expected {"0" * 32})' \
        in str(info.value)
    assert os.listdir(root) == []  # the archive is removed, also when refused
    monkeypatch.setenv(cifar10.ENV_VAR, str(tmp_path / 'env'))
    data = cifar10.load_cifar10(str(root), url=url, checksums=checksums, archive_md5=md5)
    assert data['train'][0].shape == (20, 32, 32, 3)
    assert os.listdir(root) == [cifar10.FOLDER]
    assert not (tmp_path / 'env').exists() and not (tmp_path / 'home').exists()
    data = cifar10.load_cifar10(url=url, checksums=checksums, archive_md5=md5)
    assert os.listdir(tmp_path / 'env') == [cifar10.FOLDER]


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2's `str` (SHORT_BINSTRING / BINSTRING), as the
    published CIFAR-10 batches do (`cPickle` protocol 2 under Python 2)."""
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, 'little') + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def python2_pickle(obj):
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def test_cifar_batches_pickled_by_python_2_load_with_their_bytes(tmp_path):
    """The published batches are Python 2 pickles: their keys and the images'
    raw data are Python 2 strings, which only encoding='bytes' reads as the
    bytes they are (ASCII, pickle's default, turns the keys into str)."""
    rng = np.random.default_rng(3)
    folder = tmp_path / cifar10.FOLDER
    folder.mkdir()
    batches = {}
    for name in cifar10.TRAIN_FILES + cifar10.TEST_FILES:
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        data[0, 0] = 200  # a byte ASCII cannot decode
        batches[name] = {b'batch_label': name.encode(), b'data': data,
                         b'labels': [int(x) for x in rng.integers(0, 10, 2)]}
        (folder / name).write_bytes(python2_pickle(batches[name]))
    (folder / cifar10.META_FILE).write_bytes(python2_pickle(
        {b'label_names': [b'airplane', b'automobile'], b'num_vis': 3072}))
    head = (folder / 'data_batch_1').read_bytes()[:40]
    assert head.startswith(b'\x80\x02}') and b'U\x0bbatch_label' in head  # Python 2's layout
    data = cifar10.load_cifar10(str(tmp_path), download=False, checksums=None)
    images, labels = data['train']
    expected = np.concatenate([batches[n][b'data'] for n in cifar10.TRAIN_FILES])
    np.testing.assert_array_equal(images, expected.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert labels.tolist() == sum((batches[n][b'labels'] for n in cifar10.TRAIN_FILES), [])
    assert data['test'][1].tolist() == batches['test_batch'][b'labels']
    assert data['classes'] == ['airplane', 'automobile']


def test_a_damaged_cifar_meta_file_is_refused_by_its_checksum(tmp_path):
    checksums, _ = write_cifar(tmp_path)
    path = tmp_path / cifar10.FOLDER / cifar10.META_FILE
    path.write_bytes(pickle.dumps({b'label_names': [b'not', b'cifar']}))
    with pytest.raises(cifar10.CorruptFileError) as info:
        cifar10.load_cifar10(str(tmp_path), download=False, checksums=checksums)
    assert str(info.value).startswith(f'{path}: checksum mismatch (md5 ')


def test_a_downloaded_cifar_file_is_checked_against_its_checksum(tmp_path, mirror_server,
                                                                 monkeypatch):
    """An archive whose own MD5 is right but which holds a file of another
    MD5 is refused after unpacking, not read."""
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'home'))
    archive, checksums = cifar_archive_with(tmp_path, 'stray.txt')
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / 'root'
    checksums = dict(checksums, test_batch='0' * 32)
    with pytest.raises(DataNotFoundError) as info:
        cifar10.load_cifar10(str(root), url=mirror_server + archive.name, checksums=checksums,
                             archive_md5=md5)
    path = root / cifar10.FOLDER / 'test_batch'
    assert (f'(download into {root} failed: {path}: checksum mismatch (md5 '
            f'{hashlib.md5(path.read_bytes()).hexdigest()}, expected {"0" * 32}): the file is '
            f'damaged or not CIFAR-10; delete it). Fix: ') in str(info.value)


def test_a_cifar_server_that_never_answers_times_out(tmp_path, monkeypatch, silent_server):
    """A server that takes the connection and never answers costs the
    download timeout, not the rest of the day."""
    monkeypatch.setattr(cifar10, 'DOWNLOAD_TIMEOUT_S', 0.3)
    url = f'{silent_server}cifar-10-python.tar.gz'
    root = tmp_path / 'root'
    start = time.monotonic()
    with pytest.raises(DataNotFoundError) as info:
        cifar10.load_cifar10(str(root), url=url)
    assert time.monotonic() - start < 5
    assert f'(download into {root} failed: timed out). Fix: ' in str(info.value)
    assert os.listdir(root) == []
