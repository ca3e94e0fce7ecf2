"""Every notebook executes end to end in its quick setting. The chapter
notebooks are stored with the outputs of a real run (scripts/run_notebooks.py),
and every output that does not depend on training equals what the code prints
today; the assignment notebooks are stored blank."""
import copy
import glob
import importlib.util
import os
import re
import sys

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, 'notebooks', '*.ipynb')))


def test_there_is_a_notebook_per_chapter():
    chapters = {os.path.splitext(f)[0] for f in os.listdir(os.path.join(ROOT, 'chapters'))
                if f.endswith('.py') and f != '__init__.py'}
    numbered = [n for n in NOTEBOOKS if os.path.basename(n)[0].isdigit()]
    names = {os.path.basename(n).split('-', 1)[1][:-len('.ipynb')] for n in numbered}
    assert names == (chapters - {'batchnorm'}) | {'batch-norm'}
    numbers = sorted(int(os.path.basename(n).split('-', 1)[0]) for n in numbered)
    assert numbers == list(range(1, len(numbered) + 1)), 'notebooks are numbered 1, 2, ... once each'


def test_the_assignment_notebook_shows_the_mistake_then_the_fix(monkeypatch):
    path = os.path.join(ROOT, 'notebooks', 'assignment-vgg-block.ipynb')
    nb = run(path, monkeypatch)
    text = [''.join(o.get('text', '') for o in cell.outputs if o.output_type == 'stream')
            for cell in nb.cells if cell.cell_type == 'code']
    checks = [t for t in text if t.startswith('vgg_block(')]
    assert checks[0].splitlines()[0] == ('vgg_block(1, 8): layer 1 (convolution): your output '
                                         'is 1x8x30x30, expected 1x8x32x32: did you forget '
                                         'padding=1?')
    assert all(line.split(': ', 1)[1].startswith('right: ') for line in checks[1].splitlines())


CHAPTER_NOTEBOOKS = [n for n in NOTEBOOKS if os.path.basename(n)[0].isdigit()]
MAX_STORED_BYTES = 2_000_000  # a chapter notebook with its pictures


@pytest.mark.parametrize('path', sorted(set(NOTEBOOKS) - set(CHAPTER_NOTEBOOKS)),
                         ids=os.path.basename)
def test_an_assignment_is_stored_blank(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == 'code':
            assert cell.outputs == [] and cell.execution_count is None, path


@pytest.mark.parametrize('path', CHAPTER_NOTEBOOKS, ids=os.path.basename)
def test_a_chapter_is_stored_with_a_recorded_run(path):
    """Run from top to bottom in order, once, with the machine and date on record."""
    nb = nbformat.read(path, as_version=4)
    run = nb.metadata.get('d2lnets_run', {})
    assert {'date', 'cpu', 'cores', 'minutes', 'mxnet'} <= set(run), \
        f'{path}: run python scripts/run_notebooks.py to store its outputs'
    counts = [cell.execution_count for cell in nb.cells if cell.cell_type == 'code']
    assert counts == list(range(1, len(counts) + 1)), f'{path} was not run once, top to bottom'
    assert not [o for cell in nb.cells for o in cell.get('outputs', [])
                if o.output_type == 'error'], path
    assert f"{run['date']}, {run['minutes']:.0f} min" in nb.cells[0].source
    assert os.path.getsize(path) < MAX_STORED_BYTES


def test_the_readme_states_the_stored_runs():
    """The README's notebook table is the stored notebooks' record, as
    `python scripts/run_notebooks.py --table` prints it."""
    spec = importlib.util.spec_from_file_location(
        'run_notebooks', os.path.join(ROOT, 'scripts', 'run_notebooks.py'))
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        assert runner.markdown_table() in f.read()


def printed(cell):
    """What a code cell printed, as text (memory addresses left out), and how
    many pictures it drew."""
    texts, pictures = [], 0
    for output in cell.outputs:
        if output.output_type == 'stream':
            texts.append(output.text)
        elif output.output_type in ('execute_result', 'display_data'):
            pictures += 'image/png' in output.data
            if 'image/png' not in output.data:
                texts.append(output.data.get('text/plain', ''))
        elif output.output_type == 'error':
            texts.append(f'{output.ename}: {output.evalue}')
    return re.sub(r'0x[0-9a-f]+', '0x...', ''.join(texts)), pictures


def differences(stored, fresh):
    """The untagged code cells whose output in `fresh` is not the one stored."""
    found = []
    pairs = zip([c for c in stored.cells if c.cell_type == 'code'],
                [c for c in fresh.cells if c.cell_type == 'code'], strict=True)
    for number, (old, new) in enumerate(pairs, 1):
        if 'varies' in old.metadata.get('tags', []):
            continue
        if printed(old) != printed(new):
            found.append(f'code cell {number} ({old.source.splitlines()[0][:60]!r}): stored '
                         f'{printed(old)!r:.200}, now {printed(new)!r:.200}')
    return found


def test_a_stored_output_that_no_longer_matches_is_found():
    path = next(p for p in CHAPTER_NOTEBOOKS if '3-vgg' in p)
    stored = nbformat.read(path, as_version=4)
    assert differences(stored, copy.deepcopy(stored)) == []
    changed = copy.deepcopy(stored)
    cell = next(c for c in changed.cells if c.cell_type == 'code' and 'print_layer_shapes' in
                c.source and 'varies' not in c.metadata.get('tags', []))
    stream = next(o for o in cell.outputs if o.output_type == 'stream')
    stream.text = stream.text.replace('128', '256', 1)   # one channel count in a shape table
    assert stream.text != next(o for o in next(
        c for c in stored.cells if c.source == cell.source).outputs if o.output_type == 'stream').text
    assert len(differences(stored, changed)) == 1


def run(path, monkeypatch):
    """Execute the notebook at `path` in the quick setting; fail on any cell's error."""
    monkeypatch.setenv('D2LNETS_QUICK', '1')
    # The kernel runs 'python' from PATH: make it this interpreter, with d2lnets.
    monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    monkeypatch.setenv('PYTHONPATH', ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name='python3',
                   resources={'metadata': {'path': ROOT}}).execute()
    return nb


@pytest.mark.parametrize('path', CHAPTER_NOTEBOOKS, ids=os.path.basename)
def test_executes_in_the_quick_setting_and_prints_what_is_stored(path, monkeypatch):
    nb = run(path, monkeypatch)
    assert differences(nbformat.read(path, as_version=4), nb) == [], \
        'the code prints something else now: run python scripts/run_notebooks.py again'
    outputs = [o for cell in nb.cells if cell.cell_type == 'code' for o in cell.outputs]
    text = ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')
    assert 'output shape:' in text and 'epoch 1, loss ' in text
    if not os.path.basename(path).startswith('10-'):  # the settings cell: PRESET is 'smoke'
        assert ' - smoke - ' in text
    assert any('image/png' in o.get('data', {}) for o in outputs)  # the live curves
