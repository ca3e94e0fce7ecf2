"""Values MXNet or OpenMP cannot use are stopped before MXNet loads, with one
line naming the variable and a value that works; a console that cannot show
a path gets it escaped."""
import os
import subprocess
import sys

import pytest

from d2lnets._environment import environment_problem, make_output_safe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BAD = [
    ('OMP_NUM_THREADS', 'abc', 'OMP_NUM_THREADS=2'),     # MXNet: terminate called, exit 134
    ('OMP_NUM_THREADS', '0', 'OMP_NUM_THREADS=2'),       # libgomp ignores it
    ('OMP_NUM_THREADS', '2,1', 'OMP_NUM_THREADS=2'),     # libgomp's nesting list: MXNet aborts
    ('MXNET_ENGINE_TYPE', 'Foo', 'MXNET_ENGINE_TYPE=ThreadedEnginePerDevice'),
    ('MXNET_ENGINE_TYPE', 'naiveengine', 'MXNET_ENGINE_TYPE=ThreadedEnginePerDevice'),
    ('MXNET_CPU_WORKER_NTHREADS', '0', 'MXNET_CPU_WORKER_NTHREADS=2'),  # MXNet hangs
    ('MXNET_CPU_PRIORITY_NTHREADS', 'x', 'MXNET_CPU_PRIORITY_NTHREADS=2'),
    ('MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD', '-5', 'MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD=15'),
    ('MXNET_MKLDNN_ENABLED', '2', 'MXNET_MKLDNN_ENABLED=1'),
    ('OMP_WAIT_POLICY', 'sometimes', 'OMP_WAIT_POLICY=PASSIVE'),
    ('GOMP_SPINCOUNT', 'abc', 'GOMP_SPINCOUNT=300000'),
]
GOOD = {'OMP_NUM_THREADS': '4', 'MXNET_ENGINE_TYPE': 'NaiveEngine', 'OMP_WAIT_POLICY': 'passive',
        'GOMP_SPINCOUNT': '10k', 'MXNET_MKLDNN_ENABLED': 'True',
        'MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD': '0', 'MXNET_CPU_WORKER_NTHREADS': '1'}


def run(code_or_module, env_update, module=False):
    env = dict(os.environ, **env_update)
    command = ['-m', *code_or_module] if module else ['-c', code_or_module]
    return subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize('name, value, example', BAD)
def test_an_unusable_value_is_named_with_one_that_works(name, value, example):
    problem = environment_problem({**GOOD, name: value})
    assert problem.startswith(f'{name}={value!r} is not ') and example in problem


def test_usable_values_pass():
    assert environment_problem(GOOD) is None
    assert environment_problem({}) is None
    assert environment_problem({'GOMP_SPINCOUNT': 'INFINITY'}) is None


@pytest.mark.parametrize('name, value', [('OMP_NUM_THREADS', 'abc'),
                                         ('MXNET_ENGINE_TYPE', 'Foo')])
def test_a_chapter_stops_with_one_line_and_exit_status_2(name, value):
    done = run(['chapters.lenet', '--epochs', '1'], {name: value}, module=True)
    assert done.returncode == 2
    assert done.stdout == ''
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f'd2lnets: error: {name}={value!r} is not ')


def test_an_interactive_session_gets_an_exception_it_can_catch():
    code = ('import sys; sys.ps1 = ">>> "\n'
            'try:\n    import d2lnets\nexcept ValueError as err:\n    print(type(err).__name__, err)')
    done = run(code, {'OMP_NUM_THREADS': 'abc'})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("EnvironmentSettingError OMP_NUM_THREADS='abc' is not ")


def test_an_ascii_console_gets_escaped_paths_not_an_error(tmp_path):
    out = tmp_path / 'r\u00e9seau'
    done = run(['chapters.lenet', '--epochs', '1', '--num-train', '20', '--num-test', '20',
                '--no-pictures', '--out', str(out)], {'PYTHONIOENCODING': 'ascii'}, module=True)
    assert done.returncode == 0, done.stderr
    assert f'wrote {tmp_path}/r\\xe9seau/history.json' in done.stdout
    assert (out / 'history.json').is_file()


def test_only_streams_that_cannot_show_everything_are_changed(tmp_path):
    import io
    ascii_stream = io.TextIOWrapper(io.BytesIO(), encoding='ascii')
    utf8_stream = io.TextIOWrapper(io.BytesIO(), encoding='utf-8')
    make_output_safe([ascii_stream, utf8_stream])
    assert (ascii_stream.errors, utf8_stream.errors) == ('backslashreplace', 'strict')
    ascii_stream.write('r\u00e9seau')
    ascii_stream.flush()
    assert ascii_stream.buffer.getvalue() == b'r\\xe9seau'
