"""Every notebook executes end to end in its quick setting, and is stored without outputs."""
import glob
import os
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


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == 'code':
            assert cell.outputs == [] and cell.execution_count is None, path


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


@pytest.mark.parametrize('path', [n for n in NOTEBOOKS if os.path.basename(n)[0].isdigit()],
                         ids=os.path.basename)
def test_executes_in_the_quick_setting(path, monkeypatch):
    nb = run(path, monkeypatch)
    outputs = [o for cell in nb.cells if cell.cell_type == 'code' for o in cell.outputs]
    text = ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')
    assert 'output shape:' in text and 'epoch 1, loss ' in text
    if not os.path.basename(path).startswith('10-'):  # the settings cell: PRESET is 'smoke'
        assert ' - smoke - ' in text
    assert any('image/png' in o.get('data', {}) for o in outputs)  # the live curves
