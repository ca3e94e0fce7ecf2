"""Grading a folder: every submission in its own process, every check under
its own limit; a hanging, crashing or empty submission is graded, not fatal."""
import csv
import json
import os
import time

import pytest

from d2lnets.classroom.grade import find_submissions, grade_folder, main, read_cells

RIGHT = '''
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent


class Fire(nn.HybridBlock):
    def __init__(self, squeeze, expand, **kwargs):
        super().__init__(**kwargs)
        self.squeeze = nn.Conv2D(squeeze, kernel_size=1, activation='relu')
        self.expand = HybridConcurrent(axis=1)
        self.expand.add(nn.Conv2D(expand, kernel_size=1, activation='relu'),
                        nn.Conv2D(expand, kernel_size=3, padding=1, activation='relu'))

    def hybrid_forward(self, F, x):
        return self.expand(self.squeeze(x))
'''


def notebook(*sources):
    cells = [{'cell_type': 'code', 'metadata': {}, 'outputs': [], 'execution_count': None,
              'source': source} for source in sources]
    return json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})


def write(folder, name, text):
    os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
    with open(os.path.join(folder, name), 'w') as f:
        f.write(text)


def test_a_class_is_graded_within_its_time_limits(tmp_path, mirror_server):
    (tmp_path / 'page.txt').write_text('the hidden checks')
    subs = tmp_path / 'submissions'
    fetch = (f'import urllib.request\n'
             f'leaked = urllib.request.urlopen("{mirror_server}page.txt", timeout=3).read()')
    write(subs, 'ana.ipynb', notebook('%matplotlib inline\nimport d2lnets', fetch, RIGHT))
    write(subs, 'cy.py', RIGHT.replace('        self.expand = ', '        raise RuntimeError('
                                       '"half done")\n        self.expand = ')
          + '\nimport d2lnets.models.squeezenet\n')
    write(subs, 'dee/answer.ipynb', notebook(
        'while True:\n    pass', RIGHT.replace('return self.expand', 'while True:\n'
                                                 '            pass\n        return self.expand')))
    write(subs, 'eve/notes.txt', 'no code')
    out = tmp_path / 'grades.csv'
    start = time.time()
    grade_folder(str(subs), 'fire', out=str(out), timeout=60, check_timeout=3,
                 report=lambda line: None)
    assert time.time() - start < 3 * 60 + 3 * 3   # three processes; 'eve' needs none
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['student', 'score', 'out_of', 'Fire(2, 4) on 1x6x7x7',
                       'hidden: Fire(3, 5) on 2x4x5x5']
    assert rows[1:] == [['ana', '2', '2', 'pass', 'pass'], ['cy', '0', '2', 'error', 'error'],
                        ['dee', '0', '2', 'timeout', 'timeout'],
                        ['eve', '0', '2', 'not run', 'not run']]
    feedback = {p.stem: p.read_text() for p in (tmp_path / 'feedback').iterdir()}
    ana = feedback['ana'].splitlines()
    assert ana[0] == 'Write the Fire module (fire): 2 of 2 checks pass'
    assert ana[1] == ('note: cell 2 raised PermissionError: no network while grading '
                      '(cell 2, line 2); what it defined before that is kept')
    cy = feedback['cy'].splitlines()
    assert cy[1] == ('note: cy.py imports from d2lnets (import d2lnets.models.squeezenet): '
                     'check that it does not use the reference')
    assert cy[2] == ('ERROR Fire(2, 4) on 1x6x7x7: Fire(2, 4) raised RuntimeError: half done '
                     '(cy.py, line 10)')
    dee = feedback['dee'].splitlines()
    assert dee[1] == ('note: cell 1 did not finish within 3 s: is there a loop that never ends?; '
                      'skipped')
    assert dee[2] == ('TIMEOUT Fire(2, 4) on 1x6x7x7: Fire(2, 4) did not finish within 3 s: is '
                      'there a loop that never ends?')
    assert 'no notebook or .py file found' in feedback['eve']


def test_submissions_and_cells(tmp_path):
    write(tmp_path, 'b.py', 'x = 1')
    write(tmp_path, 'a/work.ipynb', notebook('!pip install x\ny = 2', 'z = 3'))
    write(tmp_path, '.hidden.py', '')
    found = find_submissions(str(tmp_path))
    assert [(s, os.path.basename(p)) for s, p in found] == [('a', 'work.ipynb'), ('b', 'b.py')]
    assert read_cells(found[0][1]) == [['cell 1', 'pass\ny = 2'], ['cell 2', 'z = 3']]
    assert read_cells(found[1][1]) == [['b.py', 'x = 1']]
    write(tmp_path, 'bad.ipynb', '{not json')
    with pytest.raises(ValueError, match='^the notebook cannot be read'):
        read_cells(str(tmp_path / 'bad.ipynb'))


def test_the_command_line_refuses_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / 'missing'), '--assignment', 'fire'])
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        'missing is not a folder: give the folder of submissions')
    with pytest.raises(SystemExit):
        main([str(tmp_path), '--assignment', 'lenet'])
    assert 'invalid choice' in capsys.readouterr().err


def runner_processes(scratch):
    """Processes still running a student's code from under `scratch`."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                if str(scratch).encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.slow
def test_a_submission_past_its_time_is_stopped_with_every_process_it_started(tmp_path,
                                                                             monkeypatch):
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    monkeypatch.setattr('tempfile.tempdir', str(scratch))
    write(tmp_path / 'subs', 'loop.py', RIGHT.replace(
        'return self.expand', 'while True:\n            pass\n        return self.expand'))
    start = time.time()
    graded = grade_folder(str(tmp_path / 'subs'), 'fire', out=str(tmp_path / 'grades.csv'),
                          timeout=30, check_timeout=100, report=lambda line: None)
    assert time.time() - start < 30 + 30
    assert [status for status, _ in graded[0].results] == ['not run', 'not run']
    assert graded[0].notes == ['the submission ran past its 30 s limit and was stopped']
    time.sleep(1)
    assert runner_processes(scratch) == []
