"""The d2lnets a graded submission sees (`kit`): only the observer's modules,
read-only, and stand-ins that record what the submission tried to reach."""
import os
import stat
import subprocess
import sys

import d2lnets
from d2lnets.classroom.kit import KIT_MODULES, build_kit

LIBRARY = os.path.dirname(os.path.abspath(d2lnets.__file__))


def test_the_kit_holds_the_observer_and_stand_ins_and_nothing_else(tmp_path):
    kit = build_kit(str(tmp_path / 'kit'))
    assert kit == str(tmp_path / 'kit')
    found = sorted(os.path.relpath(os.path.join(d, f), kit)
                   for d, _, files in os.walk(kit) for f in files)
    assert found == sorted(['d2lnets/__init__.py', 'd2lnets/_messages.py',
                            'd2lnets/classroom/__init__.py', 'd2lnets/classroom/assignments.py',
                            'd2lnets/classroom/channel.py', 'd2lnets/classroom/limits.py',
                            'd2lnets/classroom/observe.py', 'd2lnets/classroom/runner.py'])
    for module in KIT_MODULES:
        with open(os.path.join(LIBRARY, module), 'rb') as f, \
                open(os.path.join(kit, 'd2lnets', module), 'rb') as g:
            assert f.read() == g.read()
    for directory, _, files in os.walk(kit):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o644


PROBE = '''
import d2lnets
from d2lnets.classroom import assignments
print(assignments.run_public_checks('fire', {}))
for attempt in ('import d2lnets.models', 'import chapters.ch07', 'import d2l',
                'd2lnets.Residual', 'assignments.get_assignment', 'd2lnets._private',
                'import json'):
    try:
        exec(attempt)
    except (ImportError, AttributeError) as err:
        print(type(err).__name__, err)
print(d2lnets.ATTEMPTS)
'''


def test_the_stand_ins_record_what_was_reached_for(tmp_path):
    """Without site-packages (-S): an editable install's finder would find the
    library's own d2lnets.models; inside the sandbox its folder is not there."""
    kit = build_kit(str(tmp_path / 'kit'))
    done = subprocess.run([sys.executable, '-S', '-c', PROBE], capture_output=True, text=True,
                          env={'PYTHONPATH': kit, 'PATH': os.environ.get('PATH', '')},
                          cwd=str(tmp_path), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        '(while grading, the grader runs the checks itself)',
        '[]',
        'ModuleNotFoundError No module named \'d2lnets.models\'',
        'ModuleNotFoundError No module named \'chapters\'',
        'ModuleNotFoundError No module named \'d2l\'',
        'AttributeError d2lnets.Residual is left out while grading: write your own',
        'AttributeError d2lnets.classroom.assignments.get_assignment is left out while grading',
        'AttributeError d2lnets._private is left out while grading: write your own',
        "['d2lnets.models', 'chapters', 'd2l', 'd2lnets.Residual', "
        "'d2lnets.classroom.assignments.get_assignment']"]
