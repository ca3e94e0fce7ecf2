"""Run one submission inside bubblewrap (``bwrap``) and collect what it hands back.

The sandbox (`bwrap_command`) is bubblewrap's, not ours:

- its own user, network, IPC, UTS, cgroup and PID namespaces
  (``--unshare-all``), in which the submission runs as uid/gid 65534
  (nobody) even when the teacher is root; no network at all;
- a new session (``--new-session``: no terminal to type into) and
  ``--die-with-parent``: when the grader stops bwrap, the sandbox's first
  process dies, and with it, by the kernel's rule for PID namespaces, every
  process the submission started, whether or not it left its process group;
- a read-only view of only what Python and MXNet need -- /usr (and the
  /lib, /bin links), the loader's files in /etc, the Python installation
  and its virtual environment -- in which the installed d2lnets, chapters
  and d2l packages are covered by empty folders; the kit of `kit` at /kit;
- a private copy of the submission in /submission (its working folder) and
  a private /tmp, both in memory and size-limited; nothing else is writable.

The submissions folder, the other students' files, the gradebook and the
feedback are not mounted, so they do not exist inside. Resource limits
(memory, CPU time, processes, file size, open files) are set by the runner
before any student code runs (`runner.set_limits`).

`collect` runs the command and reads its results pipe and its output under
a byte limit and a deadline, then kills it: the grader never opens a file
the submission could have made.
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import namedtuple

NOBODY = '65534'
_LINKS = ('/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32')
_ETC = ('/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/alternatives',
        '/etc/localtime')
_HIDDEN = ('d2lnets', 'chapters', 'd2l')   # the reference's packages, wherever installed
OUTPUT_KEPT = 4096     # bytes of the submission's own output kept, from its end


def sandbox_problem():
    """None when bwrap can start a sandbox here, else one line saying what to install."""
    if not sys.platform.startswith('linux'):
        return ('grading untrusted code needs Linux with bubblewrap (there is none for '
                f'{sys.platform}): grade on Linux, or pass --trust-submissions')
    if shutil.which('bwrap') is None:
        return ('bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get '
                'install bubblewrap; Fedora: dnf install bubblewrap), or pass '
                '--trust-submissions to run the submissions without a sandbox')
    try:
        probe = subprocess.run(['bwrap', '--unshare-all', '--uid', NOBODY, '--gid', NOBODY,
                                '--ro-bind', '/', '/', 'true'], capture_output=True,
                               timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return f'bwrap cannot start ({err}): or pass --trust-submissions'
    if probe.returncode:
        why = probe.stderr.decode(errors='replace').strip().splitlines()[-1:] or ['no message']
        return (f'bwrap cannot start a sandbox here ({why[0]}): user namespaces may be '
                f'disabled (sysctl kernel.unprivileged_userns_clone=1); or pass '
                f'--trust-submissions')
    return None


def _python_roots():
    """The Python installation and its virtual environment, each where its
    links lead and where this Python was started from (a venv reached through
    a link runs from the link's path: ``sys.executable`` is under it)."""
    roots = {path(prefix) for prefix in (sys.base_prefix, sys.prefix)
             for path in (os.path.realpath, os.path.abspath)}
    return sorted(roots)


def hidden_packages():
    """Folders of the installed d2lnets, chapters and d2l under the Python roots:
    the sandbox covers them with empty ones."""
    found = []
    for root in _python_roots():
        for directory in _site_dirs(root):
            for name in _HIDDEN:
                path = os.path.join(directory, name)
                if os.path.isdir(path):
                    found.append(path)
    return found


def _site_dirs(root):
    lib = os.path.join(root, 'lib')
    if not os.path.isdir(lib):
        return []
    return [os.path.join(lib, entry, 'site-packages') for entry in sorted(os.listdir(lib))
            if entry.startswith('python')]


def bwrap_command(mounts, request_fd, files, results_fd, scratch_bytes, hide_library=True):
    """The bwrap command line running the runner on one submission: `mounts` are
    (folder, place) pairs holding the d2lnets it sees (places under /kit);
    `files` (fd, name) the submission's files, copied into /submission."""
    command = ['bwrap', '--unshare-all', '--die-with-parent', '--new-session',
               '--uid', NOBODY, '--gid', NOBODY, '--clearenv',
               '--ro-bind', '/usr', '/usr']
    for path in _LINKS:
        if os.path.islink(path):
            command += ['--symlink', os.readlink(path), path]
        elif os.path.isdir(path):
            command += ['--ro-bind', path, path]
    for path in _ETC:
        command += ['--ro-bind-try', path, path]
    size = str(int(scratch_bytes))
    # the private /tmp first: a Python (a venv in a clone, say) under /tmp is
    # bound on top of it, not hidden by it
    command += ['--proc', '/proc', '--dev', '/dev', '--size', size, '--tmpfs', '/tmp']
    for root in _python_roots():
        command += ['--ro-bind', root, root]
    if hide_library:
        for path in hidden_packages():
            command += ['--tmpfs', path]
    command += ['--size', size, '--tmpfs', '/submission',
                '--ro-bind-data', str(request_fd), '/grading/request']
    for fd, name in files:
        command += ['--file', str(fd), f'/submission/{name}']
    for folder, place in mounts:
        command += ['--ro-bind', folder, place]
    command += ['--chdir', '/submission']
    for name, value in runner_environment('/kit', '/submission').items():
        command += ['--setenv', name, value]
    return command + [sys.executable, '-s', '-B', '-m', 'd2lnets.classroom.runner',
                      '/grading/request', str(results_fd)]


def runner_environment(kit, home):
    """The runner's whole environment: nothing of the grader's leaks in."""
    return {'PATH': '/usr/bin:/bin', 'HOME': home, 'PYTHONPATH': kit, 'LANG': 'C.UTF-8',
            'OMP_NUM_THREADS': '1', 'PYTHONDONTWRITEBYTECODE': '1', 'MPLBACKEND': 'Agg',
            'MPLCONFIGDIR': '/tmp', 'TMPDIR': '/tmp'}


Collected = namedtuple('Collected', 'results output timed_out overflowed exit_code')


def collect(command, pass_fds, results_fd, timeout, max_bytes, cwd=None, env=None):
    """Run `command` and read its results pipe (`results_fd`, the read end; the
    write end is in `pass_fds`) and its output until both close, at most
    `max_bytes` of results and `timeout` seconds; then kill its process group.
    A `Collected`: the results' bytes, the output's last bytes as text, and
    whether it ran out of time or sent too much."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, pass_fds=pass_fds, cwd=cwd, env=env,
                               start_new_session=True)
    for fd in pass_fds:
        os.close(fd)
    results, output = bytearray(), bytearray()
    open_fds = {results_fd: results, process.stdout.fileno(): output}
    deadline = time.monotonic() + timeout
    timed_out = overflowed = False
    try:
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select(list(open_fds), [], [], min(left, 1.0))
            for fd in ready:
                if fd not in open_fds:   # the results overflowed: reading stopped
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    del open_fds[fd]
                    continue
                buffer = open_fds[fd]
                buffer += chunk
                if fd == results_fd and len(buffer) > max_bytes:
                    overflowed = True
                    del buffer[max_bytes:]
                    open_fds.clear()
                elif fd != results_fd and len(buffer) > 2 * OUTPUT_KEPT:
                    del buffer[:-OUTPUT_KEPT]
    finally:
        _kill(process)
        os.close(results_fd)
        process.stdout.close()
    text = bytes(output[-OUTPUT_KEPT:]).decode('utf-8', errors='replace')
    return Collected(bytes(results), text, timed_out, overflowed, process.returncode)


def _kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)   # bwrap; the sandbox dies with it
    except ProcessLookupError:
        pass
    process.wait()
