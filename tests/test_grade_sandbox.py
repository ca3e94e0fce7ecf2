"""The sandbox a submission runs in: bubblewrap's namespaces as nobody, no
network, none of the grader's files, no reference, limits that hold."""
import json
import os
import select
import subprocess
import sys
import time

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


def test_the_whole_bwrap_command(tmp_path, monkeypatch):
    """Every isolation setting, in its place: namespaces, nobody, a clear
    environment, read-only system folders, private /tmp and /submission of a
    size, the reference's packages covered, the kit read-only."""
    from d2lnets.classroom import sandbox
    root = tmp_path / 'py'
    for name in ('d2l', 'd2lnets', 'chapters', 'numpy'):
        (root / 'lib' / 'python3.11' / 'site-packages' / name).mkdir(parents=True)
    (root / 'lib' / 'python3.11' / 'site-packages' / 'd2lnets.pth').write_text('')
    (root / 'lib' / 'pkgconfig' / 'd2l').mkdir(parents=True)
    (tmp_path / 'real-lib').mkdir()
    (tmp_path / 'lib').symlink_to('real-lib')
    (tmp_path / 'bin').mkdir()
    monkeypatch.setattr(sandbox, '_LINKS', (str(tmp_path / 'lib'), str(tmp_path / 'bin'),
                                            str(tmp_path / 'missing')))
    monkeypatch.setattr(sandbox, '_python_roots', lambda: [str(root)])
    site = str(root / 'lib' / 'python3.11' / 'site-packages')
    assert hidden_packages() == [os.path.join(site, 'd2lnets'), os.path.join(site, 'chapters'),
                                 os.path.join(site, 'd2l')]
    command = bwrap_command([('/the/kit', '/kit'), ('/more', '/kit/more')], 7,
                            [(8, 'ana.py'), (9, 'b.ipynb')], 10, 3 * 2 ** 20)
    env = ['PATH', '/usr/bin:/bin', 'HOME', '/submission', 'PYTHONPATH', '/kit', 'LANG',
           'C.UTF-8', 'OMP_NUM_THREADS', '1', 'PYTHONDONTWRITEBYTECODE', '1', 'MPLBACKEND',
           'Agg', 'MPLCONFIGDIR', '/tmp', 'TMPDIR', '/tmp']
    assert command == [
        'bwrap', '--unshare-all', '--die-with-parent', '--new-session', '--uid', '65534',
        '--gid', '65534', '--clearenv', '--ro-bind', '/usr', '/usr',
        '--symlink', 'real-lib', str(tmp_path / 'lib'),
        '--ro-bind', str(tmp_path / 'bin'), str(tmp_path / 'bin'),
        '--ro-bind-try', '/etc/ld.so.cache', '/etc/ld.so.cache',
        '--ro-bind-try', '/etc/ld.so.conf', '/etc/ld.so.conf',
        '--ro-bind-try', '/etc/ld.so.conf.d', '/etc/ld.so.conf.d',
        '--ro-bind-try', '/etc/alternatives', '/etc/alternatives',
        '--ro-bind-try', '/etc/localtime', '/etc/localtime',
        '--proc', '/proc', '--dev', '/dev', '--size', '3145728', '--tmpfs', '/tmp',
        '--ro-bind', str(root), str(root),
        '--tmpfs', os.path.join(site, 'd2lnets'), '--tmpfs', os.path.join(site, 'chapters'),
        '--tmpfs', os.path.join(site, 'd2l'),
        '--size', '3145728', '--tmpfs', '/submission', '--ro-bind-data', '7', '/grading/request',
        '--file', '8', '/submission/ana.py', '--file', '9', '/submission/b.ipynb',
        '--ro-bind', '/the/kit', '/kit', '--ro-bind', '/more', '/kit/more',
        '--chdir', '/submission'] + [part for pair in zip(['--setenv'] * 9, env[::2], env[1::2])
                                     for part in pair] + [
        sys.executable, '-s', '-B', '-m', 'd2lnets.classroom.runner', '/grading/request', '10']
    allowed = bwrap_command([], 7, [], 10, 2 ** 20, hide_library=False)
    assert not any(part.startswith(site) for part in allowed if part != site)


def test_the_python_roots_are_the_installation_and_the_environment(monkeypatch, tmp_path):
    from d2lnets.classroom.sandbox import _python_roots
    monkeypatch.setattr('sys.prefix', str(tmp_path / 'venv'))
    monkeypatch.setattr('sys.base_prefix', str(tmp_path / 'base'))
    assert _python_roots() == [str(tmp_path / 'base'), str(tmp_path / 'venv')]
    monkeypatch.setattr('sys.prefix', str(tmp_path / 'base'))
    assert _python_roots() == [str(tmp_path / 'base')]


def test_without_bubblewrap_grading_says_what_to_install(monkeypatch):
    from d2lnets.classroom import sandbox
    monkeypatch.setattr(sandbox.sys, 'platform', 'darwin')
    assert sandbox.sandbox_problem() == (
        'grading untrusted code needs Linux with bubblewrap (there is none for darwin): grade '
        'on Linux, or pass --trust-submissions')
    monkeypatch.setattr(sandbox.sys, 'platform', 'linux')
    assert sandbox.sandbox_problem() is None
    probes = []

    def fails(command, **kwargs):
        probes.append((command, kwargs))
        return subprocess.CompletedProcess(command, 1, b'', b'warning\nanother\nbwrap: No '
                                                            b'permissions to create new '
                                                            b'namespace\n')

    monkeypatch.setattr(sandbox.subprocess, 'run', fails)
    assert sandbox.sandbox_problem() == (
        'bwrap cannot start a sandbox here (bwrap: No permissions to create new namespace): user '
        'namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1); or pass '
        '--trust-submissions')
    assert probes[0] == (['bwrap', '--unshare-all', '--uid', '65534', '--gid', '65534',
                          '--ro-bind', '/', '/', 'true'], {'capture_output': True, 'timeout': 30})
    monkeypatch.setattr(sandbox.subprocess, 'run', lambda command, **kwargs: (
        subprocess.CompletedProcess(command, 1, b'', b'')))
    assert sandbox.sandbox_problem().startswith('bwrap cannot start a sandbox here (no message)')

    def missing(command, **kwargs):
        raise FileNotFoundError(2, 'No such file or directory')

    monkeypatch.setattr(sandbox.subprocess, 'run', missing)
    assert sandbox.sandbox_problem() == ('bwrap cannot start ([Errno 2] No such file or '
                                         'directory): or pass --trust-submissions')

    def hangs(command, **kwargs):
        raise subprocess.TimeoutExpired(command, 30)

    monkeypatch.setattr(sandbox.subprocess, 'run', hangs)
    assert sandbox.sandbox_problem().startswith('bwrap cannot start (Command ')


def run_collect(code, timeout=30, max_bytes=2 ** 20, **kwargs):
    from d2lnets.classroom.sandbox import collect
    read_end, write_end = os.pipe()
    return collect([sys.executable, '-c', code.replace('FD', str(write_end))], [write_end],
                   read_end, timeout=timeout, max_bytes=max_bytes, **kwargs)


def test_collect_keeps_the_results_and_the_end_of_the_output():
    run = run_collect('import os, sys\nos.write(FD, b"r" * 100000)\n'
                      'sys.stdout.write("a" * 10000 + "THE END")\nsys.exit(3)')
    assert run.results == b'r' * 100000
    assert run.timed_out is False and run.overflowed is False
    assert run.output == ('a' * 10000 + 'THE END')[-4096:] and run.exit_code == 3
    run = run_collect('import os\nos.write(FD, b"r" * 1000)', max_bytes=1000)
    assert run.results == b'r' * 1000 and run.overflowed is False
    run = run_collect('import os\nos.write(FD, b"r" * 1001)', max_bytes=1000)
    assert run.results == b'r' * 1000 and run.overflowed is True


def test_collect_runs_with_no_input_its_errors_in_the_output_where_and_as_asked(tmp_path):
    # the grader's own input holds text, which the run must not read
    saved, (read_end, write_end) = os.dup(0), os.pipe()
    os.write(write_end, b'typed')
    os.close(write_end)
    os.dup2(read_end, 0)
    os.close(read_end)
    try:
        run = run_collect('import os, sys\nprint(repr(sys.stdin.read()), os.getcwd(), '
                          'os.environ.get("WHO"), flush=True)\n'
                          'sys.stderr.write("to stderr ")\nsys.stderr.flush()\n'
                          'sys.stdout.buffer.write(b"bad \\xff byte")', timeout=20,
                          cwd=str(tmp_path), env={'WHO': 'the grader'})
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    assert run.output == f"'' {tmp_path} the grader\nto stderr bad \ufffd byte"
    assert run.exit_code == 0 and run.timed_out is False


def test_collect_stops_a_run_past_its_time_with_every_process_of_its_group(tmp_path):
    marker = tmp_path / 'pid'
    start = time.monotonic()
    run = run_collect(f'import os, subprocess, sys, time\n'
                      f'child = subprocess.Popen([sys.executable, "-c", "import time; '
                      f'time.sleep(60)"])\n'
                      f'open({str(marker)!r}, "w").write(str(child.pid))\n'
                      f'os.write(FD, b"partial")\nprint("waiting", flush=True)\n'
                      f'time.sleep(60)', timeout=2)
    assert 2 <= time.monotonic() - start < 10
    assert run.timed_out is True and run.results == b'partial' and run.output == 'waiting\n'
    assert run.exit_code == -9
    pid = int(marker.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError('the run\'s child outlived it')


def test_an_overflow_read_with_the_output_in_the_same_round_stops_cleanly(monkeypatch):
    """The results pass their limit in the round in which the output closes
    too: reading stops, without going on to the output's closed entry (which
    raised KeyError)."""
    from d2lnets.classroom import sandbox
    real = select.select

    def both_ready(read, write, error, timeout):
        while True:     # wait until the run has written and exited: both fds ready
            ready = real(read, write, error, timeout)
            if len(ready[0]) == len(read):
                return ready
            time.sleep(0.05)

    monkeypatch.setattr(sandbox.select, 'select', both_ready)
    run = run_collect('import os\nos.write(FD, b"r" * 1001)', max_bytes=1000)
    assert run.results == b'r' * 1000 and run.overflowed is True
