"""Grading a folder: every submission in its own sandbox, every check under
its own limit; a hanging, crashing or empty submission is graded, not fatal;
the gradebook merges re-grades and keeps a history; the command line refuses
bad input in one line."""
import csv
import json
import os
import time

import pytest

from d2lnets.classroom.grade import grade_folder, main
from d2lnets.classroom.submissions import find_submissions, read_cells, read_submission
from fire_answers import RIGHT


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
    check_cell = ('from d2lnets.classroom.assignments import run_public_checks\n\n'
                  'run_public_checks(\'fire\', globals())')     # the template's own last cell
    write(subs, 'ana.ipynb', notebook('%matplotlib inline\nimport d2lnets', fetch, RIGHT,
                                      check_cell))
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
    assert rows[0] == ['student', 'score', 'out_of', 'percent', 'Fire(2, 4) on 1x6x7x7',
                       'hidden: Fire(3, 5) on 2x4x5x5']
    assert rows[1:] == [['ana', '3', '3', '100.0', 'pass', 'pass'],
                        ['cy', '0', '3', '0.0', 'error', 'error'],
                        ['dee', '0', '3', '0.0', 'timeout', 'timeout'],
                        ['eve', '0', '3', '0.0', 'not run', 'not run']]
    feedback = {p.stem: p.read_text() for p in (tmp_path / 'feedback').iterdir()}
    ana = feedback['ana'].splitlines()
    assert ana[0] == 'Write the Fire module (fire): 2 of 2 checks pass, 3 of 3 points'
    assert ana[1].startswith('note: the submission\'s run reported: "cell 2 raised URLError')
    assert len(ana) == 4     # the check cell ran without a note
    cy = feedback['cy'].splitlines()
    assert cy[1] == ('note: the submission\'s run reported: "cy.py raised ModuleNotFoundError: '
                     'No module named \'d2lnets.models\' (cy.py, line 18); what it defined '
                     'before that is kept"')
    assert cy[2].startswith('note: the submission tried to use d2lnets.models: ')
    assert cy[3] == ('ERROR Fire(2, 4) on 1x6x7x7: Fire(2, 4) failed; the submission\'s run '
                     'reported: "Fire(2, 4) raised RuntimeError: half done (cy.py, line 10)"')
    dee = feedback['dee'].splitlines()
    assert dee[1] == ('note: the submission\'s run reported: "cell 1 did not finish within 3 s: '
                      'is there a loop that never ends?; skipped"')
    assert dee[2] == ('TIMEOUT Fire(2, 4) on 1x6x7x7: Fire(2, 4) failed; the submission\'s run '
                      'reported: "Fire(2, 4) did not finish within 3 s: is there a loop that '
                      'never ends?"')
    assert 'no notebook or .py file found' in feedback['eve']


def test_submissions_and_cells(tmp_path):
    write(tmp_path, 'b.py', 'x = 1')
    write(tmp_path, 'a/work.ipynb', notebook('!pip install x\ny = 2', 'z = 3'))
    write(tmp_path, 'a/helpers.py', 'w = 0')
    write(tmp_path, 'b.ipynb', notebook('v = 4'))
    for skipped in ('.hidden.py', '__pycache__/c.py', '.ipynb_checkpoints/d.ipynb',
                    '__MACOSX/e.py'):
        write(tmp_path, skipped, '')
    found = find_submissions(str(tmp_path))
    assert {s: [os.path.basename(p) for p in paths] for s, paths in found.items()} == {
        'a': ['helpers.py', 'work.ipynb'], 'b': ['b.ipynb', 'b.py']}
    files, cells = read_submission(found['a'])
    assert [name for name, _ in files] == ['helpers.py', 'work.ipynb']
    assert cells == [['helpers.py', 'w = 0'], ['work.ipynb cell 1', 'pass\ny = 2'],
                     ['work.ipynb cell 2', 'z = 3']]
    assert read_submission(found['b'])[1] == [['b.ipynb cell 1', 'v = 4'], ['b.py', 'x = 1']]
    assert read_cells('b.py', b'x = 1') == [['b.py', 'x = 1']]
    with pytest.raises(ValueError, match='^the notebook bad.ipynb cannot be read'):
        read_cells('bad.ipynb', b'{not json')


def test_the_command_line_refuses_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / 'missing'), '--assignment', 'fire'])
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        'missing is not a folder: give the folder of submissions')
    with pytest.raises(SystemExit):
        main([str(tmp_path), '--assignment', 'lenet'])
    assert 'invalid choice' in capsys.readouterr().err


def sandbox_processes(scratch):
    """bwrap processes still running a submission with a kit from under `scratch`."""
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
    assert sandbox_processes(scratch) == []


def test_a_roster_regrading_history_and_exports(tmp_path, capsys):
    subs, out = tmp_path / 'submissions', tmp_path / 'grades.csv'
    write(subs, 'ana.py', RIGHT)
    write(subs, 'ben.py', RIGHT.replace("kernel_size=1, activation='relu'),",
                                        "kernel_size=1),"))
    roster = tmp_path / 'students.csv'
    roster.write_text('student,name,id,sis_user_id,sis_login_id,section,email\n'
                      'ana,Ana Lima,101,S1,ana@uni.edu,A,ana@uni.edu\n'
                      'ben,Ben Ode,102,S2,ben@uni.edu,A,ben@uni.edu\n'
                      'carl,Carl Sto,103,S3,carl@uni.edu,B,carl@uni.edu\n')
    grade_folder(str(subs), 'fire', out=str(out), roster=str(roster), jobs=2,
                 report=lambda line: None)
    with open(out) as f:
        first = list(csv.reader(f))
    assert [r[:4] for r in first[1:]] == [['ana', '3', '3', '100.0'], ['ben', '0', '3', '0.0'],
                                          ['carl', '0', '3', '0.0']]
    assert first[3][4:] == ['not run', 'not run']
    assert 'no submission' in (tmp_path / 'feedback' / 'carl.txt').read_text()
    write(subs, 'ben.py', RIGHT)      # ben hands in again; only ben is graded again
    grade_folder(str(subs), 'fire', out=str(out), students=['ben'], report=lambda line: None)
    with open(out) as f:
        second = list(csv.reader(f))
    assert second[1] == first[1] and second[3] == first[3]
    assert second[2][:4] == ['ben', '3', '3', '100.0']
    with open(tmp_path / 'grades-history.csv') as f:
        history = list(csv.reader(f))
    assert history[0] == ['replaced_at'] + first[0]
    assert [r[1:] for r in history[1:]] == [first[2]]
    main(['export', 'canvas', str(out), '--assignment', 'fire', '--roster', str(roster),
          '--canvas-id', '4711', '--out', str(tmp_path / 'canvas.csv')])
    main(['export', 'moodle', str(out), '--assignment', 'fire', '--roster', str(roster),
          '--out', str(tmp_path / 'moodle.csv')])
    assert (tmp_path / 'canvas.csv').read_text().splitlines() == [
        'Student,ID,SIS User ID,SIS Login ID,Section,Write the Fire module (4711)',
        '    Points Possible,,,,,3',
        'Ana Lima,101,S1,ana@uni.edu,A,3', 'Ben Ode,102,S2,ben@uni.edu,A,3',
        'Carl Sto,103,S3,carl@uni.edu,B,0']
    assert (tmp_path / 'moodle.csv').read_text().splitlines() == [
        'Email address,ID number,Write the Fire module', 'ana@uni.edu,101,3',
        'ben@uni.edu,102,3', 'carl@uni.edu,103,0']


def test_without_a_sandbox_grading_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr('shutil.which', lambda name: None)
    with pytest.raises(SystemExit):
        main([str(tmp_path), '--assignment', 'fire', '--out', str(tmp_path / 'g.csv')])
    assert capsys.readouterr().err.splitlines() == [
        'python -m d2lnets.grade: error: bubblewrap (bwrap) is not installed: install it '
        '(Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), or pass '
        '--trust-submissions to run the submissions without a sandbox']
    assert not (tmp_path / 'g.csv').exists()


def test_the_teacher_may_allow_the_library_or_trust_the_submissions(tmp_path):
    write(tmp_path / 'subs', 'lib.py', 'from d2lnets.models.squeezenet import Fire\n')
    write(tmp_path / 'subs', 'own.py', RIGHT)
    allowed = grade_folder(str(tmp_path / 'subs'), 'fire', out=str(tmp_path / 'a.csv'),
                           allow_library=True, report=lambda line: None)
    assert [[status for status, _ in g.results] for g in allowed] == [['pass', 'pass']] * 2
    # without a sandbox nothing is kept out: only for code the teacher trusts
    trusted = grade_folder(str(tmp_path / 'subs'), 'fire', out=str(tmp_path / 't.csv'),
                           trust=True, students=['own'], report=lambda line: None)
    assert [status for status, _ in trusted[0].results] == ['pass', 'pass']
