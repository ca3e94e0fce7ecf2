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
    names = {os.path.basename(n).split('-', 1)[1][:-len('.ipynb')] for n in NOTEBOOKS}
    assert names == (chapters - {'batchnorm'}) | {'batch-norm'}


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == 'code':
            assert cell.outputs == [] and cell.execution_count is None, path


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_executes_in_the_quick_setting(path, monkeypatch):
    monkeypatch.setenv('D2LNETS_QUICK', '1')
    # The kernel runs 'python' from PATH: make it this interpreter, with d2lnets.
    monkeypatch.setenv('PATH', os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    monkeypatch.setenv('PYTHONPATH', ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name='python3',
                   resources={'metadata': {'path': ROOT}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == 'code' for o in cell.outputs]
    text = ''.join(o.get('text', '') for o in outputs if o.output_type == 'stream')
    assert 'output shape:' in text and 'epoch 1, loss ' in text
    assert any('image/png' in o.get('data', {}) for o in outputs)  # the live curves
