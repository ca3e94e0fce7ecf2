"""The d2lnets that a graded submission sees: the classroom's observer, no reference.

`build_kit(folder)` writes a package tree into `folder`, which the sandbox
mounts read-only as the only d2lnets on its path. It holds copies of the few
modules that run a submission and observe its checks (`KIT_MODULES`), and
small stand-ins for ``d2lnets``, ``d2lnets.classroom`` and
``d2lnets.classroom.assignments``. The library's models, the chapters and
the assignments' references are not in it, and the sandbox binds no other
copy of them (`sandbox` hides the installed ones): a submission cannot reach
the reference by any import route, because the code is not there.

The stand-ins record what a submission tried to reach (``d2lnets.models``,
``d2lnets.Residual``, ``chapters``, the book's ``d2l``...) in
``d2lnets.ATTEMPTS``; the runner reports it so that the feedback can name it.
That record is a courtesy to the teacher -- a submission can erase it -- the
protection is that the reference is absent.
"""
import os
import shutil

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the d2lnets package
KIT_MODULES = ('_messages.py', 'classroom/limits.py', 'classroom/observe.py',
               'classroom/channel.py', 'classroom/runner.py')

PACKAGE_STAND_IN = '''"""d2lnets while grading: only the classroom's observer.

The library's models, the chapters and the assignments' references are left
out of the grading sandbox on purpose: a submission must be the student's
own block, not the reference. What a submission tried to reach is recorded
in ATTEMPTS and reported to the grader.
"""
import sys

ATTEMPTS = []
_LEFT_OUT = ('d2lnets', 'chapters', 'd2l')


class _LeftOut:
    """Records imports of the library's left-out modules (they still fail)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split('.')[0] in _LEFT_OUT:
            ATTEMPTS.append(name)
        return None


sys.meta_path.append(_LeftOut)


def __getattr__(name):
    if not name.startswith('_'):
        ATTEMPTS.append(f'd2lnets.{name}')
    raise AttributeError(f'd2lnets.{name} is left out while grading: write your own')
'''

CLASSROOM_STAND_IN = '"""The classroom kit while grading: the runner and the observer."""\n'

ASSIGNMENTS_STAND_IN = '''"""The assignments while grading: the grader runs every check."""
import d2lnets


def run_public_checks(name, namespace, timeout=None):
    """While grading, nothing: the grader runs every check itself."""
    print('(while grading, the grader runs the checks itself)')
    return []


def __getattr__(name):
    if not name.startswith('_'):
        d2lnets.ATTEMPTS.append(f'd2lnets.classroom.assignments.{name}')
    raise AttributeError(f'd2lnets.classroom.assignments.{name} is left out while grading')
'''


def build_kit(folder):
    """Write the sandbox's d2lnets into `folder` (created); return `folder`."""
    package = os.path.join(folder, 'd2lnets')
    os.makedirs(os.path.join(package, 'classroom'))
    for module in KIT_MODULES:
        shutil.copyfile(os.path.join(_ROOT, module), os.path.join(package, module))
    for name, text in (('__init__.py', PACKAGE_STAND_IN),
                       ('classroom/__init__.py', CLASSROOM_STAND_IN),
                       ('classroom/assignments.py', ASSIGNMENTS_STAND_IN)):
        with open(os.path.join(package, name), 'w') as f:
            f.write(text)
    for directory, _, files in os.walk(folder):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return folder
