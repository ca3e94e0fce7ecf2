"""Check the environment variables MXNet reads before MXNet loads, and make
the console safe for any path.

MXNet 1.9.1 reads its settings once, when it loads, and a value it cannot
parse ends the process inside its C++ code (OMP_NUM_THREADS=abc: "terminate
called", exit 134) or in an MXNetError traceback at the first operator
(MXNET_ENGINE_TYPE=Foo); libgomp ignores a bad OMP_* value with a warning,
so the user's setting silently does nothing. `environment_problem` finds the
first such value and says, in one line, what would work. Checked: the
variables below, each of which was seen to break or be ignored here.

A console whose encoding cannot show a character (an ASCII locale, a path
with an accent) would raise UnicodeEncodeError at the first print of that
path, after training; `make_output_safe` has such characters escaped
instead (`\\xe9`).
"""
import os
import re
import sys

ENGINES = ('ThreadedEnginePerDevice', 'ThreadedEngine', 'NaiveEngine')
AT_LEAST_ONE = ('OMP_NUM_THREADS', 'MXNET_CPU_WORKER_NTHREADS', 'MXNET_CPU_PRIORITY_NTHREADS',
                'MXNET_GPU_WORKER_NTHREADS', 'MXNET_GPU_COPY_NTHREADS',
                'MXNET_KVSTORE_REDUCTION_NTHREADS')
AT_LEAST_ZERO = ('MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN', 'MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD',
                 'MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_BWD', 'MXNET_KVSTORE_BIGARRAY_BOUND')
BOOLEANS = ('MXNET_MKLDNN_ENABLED', 'MXNET_EXEC_BULK_EXEC_TRAIN',
            'MXNET_EXEC_BULK_EXEC_INFERENCE', 'MXNET_EXEC_ENABLE_INPLACE', 'MXNET_ENGINE_INFO')
SPIN_COUNT = re.compile(r'(\d+[kKmMgGtT]?|infinite|infinity)', re.I)


class EnvironmentSettingError(ValueError):
    """An environment variable holds a value MXNet or OpenMP cannot use."""


def environment_problem(env):
    """One line naming the first unusable variable in `env` and a valid value, or None."""
    for name in AT_LEAST_ONE:
        if name in env and not (env[name].isdigit() and int(env[name]) >= 1):
            return _problem(name, env[name], 'a whole number of at least 1', f'{name}=2')
    for name in AT_LEAST_ZERO:
        if name in env and not env[name].isdigit():
            return _problem(name, env[name], 'a whole number of at least 0', f'{name}=15')
    for name in BOOLEANS:
        if name in env and env[name].lower() not in ('0', '1', 'true', 'false'):
            return _problem(name, env[name], '0 or 1', f'{name}=1')
    if 'MXNET_ENGINE_TYPE' in env and env['MXNET_ENGINE_TYPE'] not in ENGINES:
        return _problem('MXNET_ENGINE_TYPE', env['MXNET_ENGINE_TYPE'],
                        f'one of {", ".join(ENGINES)}', f'MXNET_ENGINE_TYPE={ENGINES[0]}')
    if 'OMP_WAIT_POLICY' in env and env['OMP_WAIT_POLICY'].upper() not in ('ACTIVE', 'PASSIVE'):
        return _problem('OMP_WAIT_POLICY', env['OMP_WAIT_POLICY'], 'ACTIVE or PASSIVE',
                        'OMP_WAIT_POLICY=PASSIVE')
    if 'GOMP_SPINCOUNT' in env and not SPIN_COUNT.fullmatch(env['GOMP_SPINCOUNT']):
        return _problem('GOMP_SPINCOUNT', env['GOMP_SPINCOUNT'],
                        'a whole number of spins (k, M, G suffixes) or INFINITY',
                        'GOMP_SPINCOUNT=300000')
    return None


def _problem(name, value, wanted, example):
    return f'{name}={value!r} is not {wanted}: set it like {example}, or unset it'


def check_environment():
    """Stop on an unusable variable before MXNet loads: one line on stderr and
    exit status 2 in a command-line program, EnvironmentSettingError in an
    interactive session (Jupyter, IPython, the Python prompt)."""
    problem = environment_problem(os.environ)
    if problem is None:
        return
    if interactive():
        raise EnvironmentSettingError(problem)
    print(f'd2lnets: error: {problem}', file=sys.stderr)
    raise SystemExit(2)


def interactive():
    """Whether Python runs a prompt or a notebook kernel rather than a program."""
    return hasattr(sys, 'ps1') or 'IPython' in sys.modules or bool(sys.flags.interactive)


def make_output_safe(streams=None):
    """Escape characters that the encoding of stdout or stderr cannot show
    (backslashreplace) instead of raising UnicodeEncodeError; streams that
    can show everything (UTF-8) are left as they are."""
    for stream in streams if streams is not None else (sys.stdout, sys.stderr):
        encoding = (getattr(stream, 'encoding', None) or '').lower().replace('-', '')
        if encoding.startswith('utf') or not hasattr(stream, 'reconfigure'):
            continue
        if getattr(stream, 'errors', 'strict') == 'strict':
            stream.reconfigure(errors='backslashreplace')
