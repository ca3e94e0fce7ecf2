"""Start a job on MXNet's parameter server (ps-lite) and end it cleanly.

    python -m d2lnets.training.launch -n 2 -s 1 -- python -m chapters.resnet --kvstore dist_sync

starts one scheduler, `-s` servers and `-n` workers, each with the DMLC_*
variables that `mx.kv.create('dist_sync')` reads (D2L section 13.7 and
MXNet's distributed training guide). Servers and the scheduler are plain
`python -c "import mxnet"`: importing MXNet with DMLC_ROLE=server or
scheduler runs that role and exits. Workers run the command after `--`.

By default everything runs on this machine over 127.0.0.1 on a free port.
With `--hostfile` (one host per line) workers and servers are placed on the
hosts in turn and started over ssh in the same directory, and the scheduler
runs here at `--scheduler-host`.

MXNet's own tools/launch.py waits forever when a process dies, since the
others block in ps-lite. This launcher fails fast instead: when any process
exits non-zero, or `--timeout` seconds pass, it ends every process (SIGTERM,
then SIGKILL) and exits non-zero within seconds. Each process's output is
printed with its role in front, e.g. `[worker 1] epoch 1, ...`.

The job has joined when the scheduler reports every worker and server
connected (ps-lite says so when PS_VERBOSE is set, as it is for the
scheduler). A worker that exits, even with 0, before the job has joined
could never be joined by the others, which would wait for it forever: the
job is ended with exit code 1. A job that has not joined within
`--join-timeout` seconds (default JOIN_TIMEOUT) is ended with EXIT_TIMEOUT.
A worker command that is not found is refused before anything starts.

Killed itself, even by SIGKILL, the launcher leaves nothing running on Linux:
each process it starts asks the kernel to SIGKILL it when the launcher dies
(`prctl(PR_SET_PDEATHSIG)`, see `die_with_launcher`). Elsewhere that has no
equivalent, and a SIGKILLed launcher leaves its processes to be ended by hand.
"""
import argparse
import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from .. import _threads
from .._args import OneLineParser, int_up_to, positive_float

EXIT_TIMEOUT = 124
GRACE_SECONDS = 5
POLL_SECONDS = 0.1
JOIN_TIMEOUT = 300.0
JOIN_GRACE_SECONDS = 3  # for the scheduler's line to arrive after a worker's exit
JOINED_MARK = 'the scheduler is connected to'
PS_LITE_LOG = 'ps-lite/src/'  # the scheduler's log lines, relayed only if the user set PS_VERBOSE
MAX_PROCESSES = 256
MAX_PORT = 65535

# A remote process is ended when its ssh connection closes: a watchdog waits
# for end-of-input (which comes when the launcher's ssh client goes) and then
# kills the process, which ssh alone would leave running. Input is kept on
# fd 3 because a background list reads /dev/null.
REMOTE_WRAPPER = ('exec 3<&0; {command} & child=$!; '
                  '(read -r _ <&3; kill -TERM $child) >/dev/null 2>&1 & watchdog=$!; '
                  'wait $child; status=$?; kill $watchdog 2>/dev/null; exit $status')


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class LaunchError(RuntimeError):
    """Input the launcher cannot start a job from."""


def free_port(host):
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_hostfile(path):
    """Host names or addresses, one a line; blank lines and `#` comments skipped."""
    try:
        with open(path) as f:
            lines = [line.split('#')[0].strip() for line in f]
    except OSError as err:
        raise LaunchError(f'cannot read --hostfile {path} ({err.strerror})') from None
    hosts = [line for line in lines if line]
    if not hosts:
        raise LaunchError(f'--hostfile {path} names no host; write one host a line')
    return hosts


def address(host):
    """The IPv4 address of `host`: ps-lite binds to DMLC_NODE_HOST and takes no names."""
    try:
        return socket.gethostbyname(host)
    except OSError:
        raise LaunchError(f'cannot find the address of host {host!r}; check the host file '
                          f'or give an IP address') from None


def plan(num_workers, num_servers, hosts=None, scheduler_host='127.0.0.1', port=None):
    """The processes of a job: a list of (label, host, environment) triples.

    `hosts=None` runs everything here on `scheduler_host`; otherwise servers and
    workers go to `hosts` in turn (servers first), and `None` as a process's
    host means this machine. Workers here share its cores (OMP_NUM_THREADS,
    unless the user set it); servers and the scheduler take one thread each.
    """
    root = address(scheduler_host)
    port = port or free_port(root)
    common = {'DMLC_PS_ROOT_URI': root, 'DMLC_PS_ROOT_PORT': str(port),
              'DMLC_NUM_SERVER': str(num_servers), 'DMLC_NUM_WORKER': str(num_workers)}
    roles = ([('scheduler', 'scheduler', None)]
             + [(f'server {i}', 'server', i) for i in range(num_servers)]
             + [(f'worker {i}', 'worker', num_servers + i) for i in range(num_workers)])
    processes = []
    for label, role, slot in roles:
        host = None if hosts is None or slot is None else hosts[slot % len(hosts)]
        env = dict(common, DMLC_ROLE=role, DMLC_NODE_HOST=address(host) if host else root)
        if role != 'worker':
            env['OMP_NUM_THREADS'] = '1'
        if role == 'scheduler':
            env['PS_VERBOSE'] = os.environ.get('PS_VERBOSE', '1')  # it says when all joined
        processes.append((label, host, env))
    local_workers = sum(1 for label, host, _ in processes
                        if host is None and label.startswith('worker'))
    if local_workers and _threads.SET_BY_D2LNETS:
        threads = str(max(1, _threads.usable_cores() // local_workers))
        for label, host, env in processes:
            if host is None and label.startswith('worker'):
                env['OMP_NUM_THREADS'] = threads
    return processes


def command_line(argv, env, host, python=sys.executable):
    """The argv that starts one process: locally, or over ssh on `host`."""
    argv = argv if env['DMLC_ROLE'] == 'worker' else [python, '-c', 'import mxnet']
    if host is None:
        return argv
    assignments = ' '.join(f'{k}={shlex.quote(v)}' for k, v in sorted(env.items()))
    command = f'cd {shlex.quote(os.getcwd())} && exec env {assignments} {shlex.join(argv)}'
    remote = REMOTE_WRAPPER.format(command=command)
    return ['ssh', '-o', 'BatchMode=yes', host, f'sh -c {shlex.quote(remote)}']


def die_with_launcher():
    """A `preexec_fn` that makes the process about to start receive SIGKILL
    when the launcher dies, however it dies; None where the kernel offers no
    such thing (not Linux).

    The signal is tied to the thread that starts the process, so processes
    must be started from the main thread. A launcher that died between the
    fork and the `prctl` would never send it: the child then finds another
    parent (`getppid`) and kills itself at once.
    """
    if not sys.platform.startswith('linux'):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the child
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    launcher = os.getpid()

    def preexec():
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != launcher:
            os.kill(os.getpid(), signal.SIGKILL)
    return preexec


class Job:
    """The running processes of one job, their output relayed line by line."""

    def __init__(self, log=sys.stdout):
        self.processes = []  # (label, Popen)
        self.joined = threading.Event()
        self._log = log
        self._lock = threading.Lock()
        self._relays = []
        self._show_ps_lite = bool(os.environ.get('PS_VERBOSE'))

    def start(self, label, argv, env, host):
        """Start one process; `LaunchError` when its command cannot be run."""
        try:
            proc = subprocess.Popen(command_line(argv, env, host),
                                    env={**os.environ, **env} if host is None else None,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=die_with_launcher())
        except OSError as err:
            raise LaunchError(f'cannot start {label}: {err.strerror}: {err.filename}') from None
        relay = threading.Thread(target=self._relay, args=(label, proc.stdout), daemon=True)
        relay.start()
        self._relays.append(relay)
        self.processes.append((label, proc))

    def _relay(self, label, stream):
        for raw in iter(stream.readline, b''):
            line = raw.decode(errors='replace').rstrip('\n')
            if label == 'scheduler':
                if JOINED_MARK in line:
                    self.joined.set()
                if PS_LITE_LOG in line and not self._show_ps_lite:
                    continue
            with self._lock:
                print(f'[{label}] {line}', file=self._log, flush=True)

    def say(self, message):
        with self._lock:
            print(f'launch: {message}', file=sys.stderr, flush=True)

    def wait(self, timeout=None, join_timeout=JOIN_TIMEOUT):
        """Wait for the workers; return the job's exit code.

        0 when every worker exits 0 after the job joined (servers and the
        scheduler are then given a few seconds to stop by themselves);
        otherwise, after ending every process, the first non-zero exit code,
        1 when a worker exited before the job joined, or EXIT_TIMEOUT when
        the job did not join within `join_timeout` or end within `timeout`.
        """
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        workers = [(label, p) for label, p in self.processes if label.startswith('worker')]
        while True:
            for label, proc in self.processes:
                code = proc.poll()
                if code is not None and code != 0:
                    self.say(f'{label} exited with code {code}; ending the job')
                    self.end()
                    return code if code > 0 else 128 - code
            early = [label for label, p in workers if p.poll() == 0]
            if early and not self.joined.wait(JOIN_GRACE_SECONDS):
                self.say(f'{early[0]} exited with code 0 before every worker had joined the '
                         f'parameter server, so the others would wait forever; ending the job '
                         f'(the worker command must create a dist kvstore, e.g. '
                         f'--kvstore dist_sync)')
                self.end()
                return 1
            if not self.joined.is_set() and time.monotonic() > start + join_timeout:
                self.say(f'the workers did not all join the parameter server within '
                         f'--join-timeout {join_timeout:g} s; ending the job')
                self.end()
                return EXIT_TIMEOUT
            if all(p.poll() == 0 for _, p in workers):
                self.end(grace=GRACE_SECONDS)
                return 0
            if deadline is not None and time.monotonic() > deadline:
                self.say(f'no end after --timeout {timeout:g} s; ending the job')
                self.end()
                return EXIT_TIMEOUT
            time.sleep(POLL_SECONDS)

    def end(self, grace=0.0):
        """Wait up to `grace` seconds, then SIGTERM every process group still
        running, and SIGKILL what is left after GRACE_SECONDS more."""
        for sig, wait in ((None, grace), (signal.SIGTERM, GRACE_SECONDS),
                          (signal.SIGKILL, GRACE_SECONDS)):
            if sig is not None:
                for _, proc in self.processes:
                    if proc.poll() is None:
                        _signal_group(proc, sig)
            deadline = time.monotonic() + wait
            while any(p.poll() is None for _, p in self.processes) and \
                    time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
        for relay in self._relays:
            relay.join(timeout=1)


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def parse_args(argv=None):
    parser = OneLineParser(
        prog='python -m d2lnets.training.launch',
        description='Run a command as the workers of a job on MXNet\'s parameter server.',
        epilog='Example: python -m d2lnets.training.launch -n 2 -s 1 -- python -m chapters.lenet '
               '--kvstore dist_sync --ctx cpu')
    processes = int_up_to(MAX_PROCESSES, 'the most processes of one kind a job starts')
    parser.add_argument('-n', '--num-workers', type=processes, required=True,
                        help=f'number of worker processes (1..{MAX_PROCESSES})')
    parser.add_argument('-s', '--num-servers', type=processes, default=1,
                        help='number of server processes (default: %(default)s)')
    parser.add_argument('--hostfile', help='file of hosts, one a line, to start servers and '
                                           'workers on over ssh (default: all on 127.0.0.1)')
    parser.add_argument('--scheduler-host',
                        help='address of this machine that the hosts can reach (default: '
                             '127.0.0.1, or with --hostfile this machine\'s address)')
    parser.add_argument('--port', type=int_up_to(MAX_PORT, 'the highest TCP port'),
                        help='scheduler port (default: a free one)')
    parser.add_argument('--timeout', type=positive_float,
                        help='end the whole job after this many seconds (default: no limit)')
    parser.add_argument('--join-timeout', type=positive_float, default=JOIN_TIMEOUT,
                        help='end the job when its workers have not all joined the parameter '
                             'server after this many seconds (default: %(default)g)')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='the worker command, after --')
    args = parser.parse_args(argv)
    if args.command[:1] == ['--']:
        args.command = args.command[1:]
    if not args.command:
        parser.error('no worker command: put it after --, e.g. -- python train.py')
    if not args.hostfile:
        problem = missing_program(args.command)
        if problem:
            parser.error(problem)
    return args


def missing_program(command):
    """Why `command` cannot start here (its program, or the script given to
    Python, is not found), or None."""
    program = command[0]
    if shutil.which(program) is None:
        return (f'worker command {program} not found; give a path to it or a program on '
                f'PATH')
    script = command[1] if len(command) > 1 else None
    if os.path.basename(program).startswith('python') and script \
            and script.endswith('.py') and not os.path.isfile(script):
        return f'worker script {script} not found; check the path after {program}'
    return None


def main(argv=None):
    args = parse_args(argv)
    try:
        hosts = read_hostfile(args.hostfile) if args.hostfile else None
        scheduler_host = args.scheduler_host or (
            socket.gethostbyname(socket.gethostname()) if hosts else '127.0.0.1')
        processes = plan(args.num_workers, args.num_servers, hosts, scheduler_host, args.port)
    except (LaunchError, OSError) as err:
        print(f'python -m d2lnets.training.launch: error: {err}', file=sys.stderr)
        sys.exit(2)
    job = Job()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        for label, host, env in processes:
            job.start(label, args.command, env, host)
        code = job.wait(args.timeout, args.join_timeout)
    except LaunchError as err:
        job.say(f'error: {err}; ending the job')
        code = 2
    except KeyboardInterrupt:
        job.say('interrupted; ending the job')
        code = 130
    except SystemExit as stop:
        job.say('terminated; ending the job')
        code = stop.code
    finally:
        job.end()
    sys.exit(code)


if __name__ == '__main__':
    main()
