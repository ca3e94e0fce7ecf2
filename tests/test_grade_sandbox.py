"""The sandbox a submission runs in: bubblewrap's namespaces as nobody, no
network, none of the grader's files, no reference, limits that hold."""
import json
import os
import subprocess
import sys

import d2lnets
from d2lnets.classroom.grade import LIBRARY_ROOT, kit_mounts
from d2lnets.classroom.kit import build_kit
from d2lnets.classroom.sandbox import bwrap_command, hidden_packages

LOOK_AROUND = '''
import json, os, resource, socket, sys
sys.path.insert(0, '/kit')
from d2lnets.classroom.runner import set_limits
seen = {'uid': os.getuid(), 'gid': os.getgid(), 'pid': os.getpid(),
        'files': sorted(os.listdir('/submission')), 'cwd': os.getcwd(),
        'grader': os.path.exists(sys.argv[1]), 'library': os.path.exists(sys.argv[2])}
try:
    socket.create_connection(('1.1.1.1', 80), timeout=2)
    seen['network'] = True
except OSError:
    seen['network'] = False
set_limits({'memory': 768 * 2 ** 20, 'processes': 16, 'file_size': 2 ** 20, 'open_files': 64})
try:
    open('/submission/big', 'wb').write(b'x' * 2 ** 21)
    seen['big file'] = True
except OSError:
    seen['big file'] = False
try:
    bytearray(800 * 2 ** 20)
    seen['big memory'] = True
except MemoryError:
    seen['big memory'] = False
try:
    import d2lnets.models
    seen['models'] = True
except ImportError:
    seen['models'] = False
print(json.dumps(seen), flush=True)
os._exit(0)   # MXNet's exit handlers want more than these limits allow
'''


def memory_file(data):
    fd = os.memfd_create('test')
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def test_inside_the_sandbox(tmp_path):
    kit = build_kit(str(tmp_path / 'kit'))
    request, answer = memory_file(b'request'), memory_file(b'Fire = None\n')
    command = bwrap_command(kit_mounts(kit, False), request, [(answer, 'ana.py')], 1, 2 ** 20)
    command = command[:command.index(sys.executable)] + [
        sys.executable, '-c', LOOK_AROUND, str(tmp_path), os.path.dirname(d2lnets.__file__)]
    done = subprocess.run(command, pass_fds=(request, answer), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        'uid': 65534, 'gid': 65534, 'pid': 2, 'files': ['ana.py'], 'cwd': '/submission',
        'grader': False, 'library': False, 'network': False, 'big file': False,
        'big memory': False, 'models': False}


def test_the_command_binds_no_reference():
    command = bwrap_command([('/some/kit', '/kit')], 3, [(4, 'ana.py')], 5, 2 ** 20)
    assert command[:8] == ['bwrap', '--unshare-all', '--die-with-parent', '--new-session',
                           '--uid', '65534', '--gid', '65534']
    assert not any(part.startswith(os.path.join(LIBRARY_ROOT, 'd2lnets')) for part in command)
    for path in hidden_packages():
        assert command[command.index(path) - 1] == '--tmpfs'
    assert any(path.endswith(os.path.join('site-packages', 'd2l')) for path in hidden_packages())


def test_a_python_under_tmp_is_bound_over_the_private_tmp(monkeypatch):
    """A venv in a clone under /tmp (as CI may have it) must stay visible: the
    private /tmp is mounted first, the Python roots on top of it."""
    monkeypatch.setattr('d2lnets.classroom.sandbox._python_roots',
                        lambda: ['/tmp/ci/repo/.venv', '/opt/python'])
    command = bwrap_command([], 3, [], 4, 1 << 20)
    tmp = command.index('/tmp', command.index('--tmpfs'))
    venv = command.index('/tmp/ci/repo/.venv')
    assert command[venv - 1] == '--ro-bind' and venv > tmp


def test_a_python_reached_through_a_link_is_bound_where_it_runs_from(tmp_path, monkeypatch):
    """A venv reached through a link runs from the link's path (`sys.executable`
    is under it): the sandbox binds that path too, or bwrap cannot start Python."""
    real = tmp_path / 'real-venv'
    real.mkdir()
    (tmp_path / 'venv').symlink_to(real)
    monkeypatch.setattr('sys.prefix', str(tmp_path / 'venv'))
    monkeypatch.setattr('sys.base_prefix', '/usr')
    command = bwrap_command([], 3, [], 4, 1 << 20)
    for root in (str(real), str(tmp_path / 'venv'), '/usr'):
        place = command.index(root, command.index('/tmp'))
        assert command[place - 1:place + 2] == ['--ro-bind', root, root]
