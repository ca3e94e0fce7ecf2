"""A hostile class: each kind of attack a teacher found (issue 27), handed in
beside honest students whose grades must come out unchanged.

Every test here calls the grader only as the grader before the sandbox was
called (`grade_folder(folder, assignment, out=..., timeout=..., check_timeout=...,
report=...)`), so each one fails on that grader for the attack's own reason.
"""
import csv
import os
import subprocess
import sys
import threading
import time

import d2lnets
from d2lnets.classroom.grade import grade_folder
from fire_answers import RIGHT, WRONG

CHECKS = ['Fire(2, 4) on 1x6x7x7', 'hidden: Fire(3, 5) on 2x4x5x5']
HONEST = {'ana': ['pass', 'pass'], 'ben': ['fail', 'fail']}


def hand_in(folder, submissions):
    folder.mkdir(exist_ok=True)
    for name, text in submissions.items():
        (folder / name).write_text(text)


def grade(tmp_path, attackers, timeout=60):
    """Grade ana (right), ben (wrong) and the `attackers` ({file name: code});
    return ({student: [status per check]}, {student: feedback text})."""
    subs = tmp_path / 'submissions'
    hand_in(subs, dict({'ana.py': RIGHT, 'ben.py': WRONG}, **attackers))
    out = tmp_path / 'grades.csv'
    grade_folder(str(subs), 'fire', out=str(out), timeout=timeout, check_timeout=10,
                 report=lambda line: None)
    return read_statuses(out), read_feedback(tmp_path / 'feedback')


def read_statuses(out):
    with open(out) as f:
        return {row['student']: [row[c] for c in CHECKS] for row in csv.DictReader(f)}


def read_feedback(folder):
    return {p.stem: p.read_text() for p in folder.iterdir() if p.suffix == '.txt'}


def assert_honest_unchanged(statuses):
    for student, expected in HONEST.items():
        assert statuses[student] == expected, student


FORGE_MAIN = '''
import sys

runner = sys.modules['__main__']


def forged(*args, **kwargs):   # an observation with no outputs at all
    return {'weights': [], 'layout': [], 'param_problem': None, 'steps': [], 'outputs': [],
            'returned': ['array', 1]}


runner.observe = forged
Fire = dict
'''

FORGE_PIPE = '''
import os, sys
from d2lnets.classroom import channel

fd = int(sys.argv[2])       # the results pipe, named on the runner's command line
channel.send(fd, {'notes': [], 'attempts': []})
for check in range(2):
    channel.send(fd, {'check': check, 'status': 'observed', 'observation': {
        'param_problem': None, 'returned': ['array', 1], 'steps': [], 'outputs': []}})
os._exit(0)
'''


def test_a_forged_empty_result_earns_nothing(tmp_path):
    statuses, feedback = grade(tmp_path, {'fay.py': FORGE_MAIN, 'finn.py': FORGE_PIPE})
    assert_honest_unchanged(statuses)
    assert statuses['fay'] == ['error', 'error']
    assert statuses['finn'] == ['error', 'error']
    assert 'malformed result for this check (it holds no outputs)' in feedback['fay']
    # its cell runs twice (once to time it): every forged answer comes twice
    assert ('handed back 2 results for this check, expected one: none is used'
            in feedback['finn'])


def test_a_submission_cannot_touch_other_students_files_or_the_gradebook(tmp_path):
    subs, out, feedback = tmp_path / 'submissions', tmp_path / 'grades.csv', tmp_path / 'feedback'
    vandal = f'''
import os
for path, text in (({str(subs / 'ben.py')!r}, 'Fire = None'),
                   ({str(feedback / 'ana.txt')!r}, 'ana: 0 points'),
                   ({str(out)!r}, 'student,score\\nana,0')):
    try:
        with open(path, 'w') as f:
            f.write(text)
    except OSError:
        pass
for path in ({str(subs / 'cleo.py')!r}, {str(subs / 'ana.py')!r}):
    try:
        os.remove(path)
    except OSError:
        pass
''' + RIGHT
    statuses, texts = grade(tmp_path, {'aaron.py': vandal, 'cleo.py': RIGHT, 'zed.py': vandal})
    assert_honest_unchanged(statuses)
    assert statuses['cleo'] == ['pass', 'pass']
    assert statuses['aaron'] == statuses['zed'] == ['pass', 'pass']   # their own Fire is right
    assert [(subs / name).read_text() for name in ('ana.py', 'ben.py', 'cleo.py')] == [
        RIGHT, WRONG, RIGHT]
    assert texts['ana'].startswith('Write the Fire module (fire): 2 of 2 checks pass')


def processes_with(marker):
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_a_process_that_leaves_the_group_dies_with_the_submission(tmp_path):
    marker = f'd2lnets-escape-{os.getpid()}-{time.time_ns()}'
    out = tmp_path / 'grades.csv'
    later = (f'import time\ntime.sleep(2)\ntry:\n    open({str(out)!r}, "w").write("forged")\n'
             f'except OSError:\n    pass\ntime.sleep(60)\n')
    escape = f'''
import os, sys

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', {later!r}, {marker!r}])
    os._exit(0)
os.wait()
''' + RIGHT
    try:
        statuses, _ = grade(tmp_path, {'eli.py': escape})
        time.sleep(3)
        assert processes_with(marker) == []
        assert read_statuses(out)['ana'] == ['pass', 'pass']
        assert_honest_unchanged(statuses)
    finally:
        for pid in processes_with(marker):
            os.kill(pid, 9)


def test_pipes_and_links_never_block_or_leak(tmp_path):
    subs = tmp_path / 'submissions'
    subs.mkdir()
    os.mkfifo(subs / 'mallory.py')                   # a named pipe handed in as code
    os.symlink(subs / 'ana.py', subs / 'trudy.py')     # a link to a classmate's answer
    pipe_inside = ('import os\nfor name in ("../work/notes.json", "../work/check-0.npz"):\n'
                   '    try:\n        os.mkfifo(name)\n    except OSError:\n        pass\n')
    finished = {}

    def run():
        finished['result'] = grade(tmp_path, {'pia.py': pipe_inside}, timeout=40)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(150)
    assert not worker.is_alive(), 'the grader blocked'
    statuses, feedback = finished['result']
    assert_honest_unchanged(statuses)
    assert statuses['mallory'] == statuses['trudy'] == ['not run', 'not run']
    assert 'mallory.py is not a plain file' in feedback['mallory']
    assert 'trudy.py cannot be opened' in feedback['trudy']
    assert statuses['pia'] == ['error', 'error']


HUGE = '''
import json, os, sys
import numpy as np

for _ in range(100):                       # 100 MB of output
    sys.stdout.write('x' * 10 ** 6)
runner = sys.modules['__main__']


def bomb(observation, path):               # 1 GiB of zeros in a 1 MB compressed file
    fields = {'error': None, 'param_problem': None, 'weights': [], 'layout': [],
              'outputs': [['output', 'a0']], 'steps': []}
    np.savez_compressed(path, fields=np.array(json.dumps(fields)),
                        a0=np.zeros(2 ** 28, np.float32))


runner.save_observation = bomb
try:                                       # a message that says it is 1 TiB long
    fd = int(sys.argv[2])
    os.write(fd, b'D2LM' + (2 ** 40).to_bytes(8, 'big'))
    for _ in range(64):
        os.write(fd, b'\\0' * 2 ** 20)
except (ValueError, OSError):
    pass
''' + RIGHT

# The peak is VmHWM, this process's own: ru_maxrss would carry over the peak
# of the pytest worker that started it (Linux keeps it across exec).
MEASURE = '''
import sys
from d2lnets.classroom.grade import grade_folder

grade_folder(sys.argv[1], 'fire', out=sys.argv[2], timeout=60, check_timeout=10,
             report=lambda line: None)
with open('/proc/self/status') as status:
    print(next(line.split()[1] for line in status if line.startswith('VmHWM:')))
'''


def test_a_huge_result_does_not_make_the_grader_allocate_it(tmp_path):
    subs = tmp_path / 'submissions'
    hand_in(subs, {'ana.py': RIGHT, 'ben.py': WRONG, 'hugo.py': HUGE})
    out = tmp_path / 'grades.csv'
    done = subprocess.run([sys.executable, '-c', MEASURE, str(subs), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_kib = int(done.stdout.split()[-1])
    assert peak_kib < 900 * 1024, f'the grader peaked at {peak_kib // 1024} MiB'
    statuses = read_statuses(out)
    assert_honest_unchanged(statuses)
    assert statuses['hugo'] == ['not run', 'not run']
    hugo = (tmp_path / 'feedback' / 'hugo.txt').read_text()
    assert 'bytes of results: the rest was discarded and the run stopped' in hugo


def test_the_reference_earns_nothing_by_any_import_route(tmp_path):
    real = os.path.join(os.path.dirname(d2lnets.__file__), 'models', 'squeezenet.py')
    routes = {
        'r1.py': 'from d2lnets.classroom.assignments import Fire\n',
        'r2.py': 'import d2lnets\nFire = d2lnets.Fire\n',
        'r3.py': 'from d2lnets.models.squeezenet import Fire\n',
        'r4.py': 'from chapters.squeezenet import Fire\n',
        'r5.py': ('import importlib.util\n'
                  f'spec = importlib.util.spec_from_file_location("sq", {real!r})\n'
                  'module = importlib.util.module_from_spec(spec)\n'
                  'spec.loader.exec_module(module)\nFire = module.Fire\n'),
    }
    statuses, feedback = grade(tmp_path, routes)
    assert_honest_unchanged(statuses)
    for name in routes:
        student = name[:-3]
        assert 'pass' not in statuses[student], student
    named = {'r1': 'd2lnets.classroom.assignments.Fire', 'r2': 'd2lnets.Fire',
             'r3': 'd2lnets.models', 'r4': 'chapters'}
    for student, what in named.items():
        assert f'note: the submission tried to use {what}' in feedback[student], student
