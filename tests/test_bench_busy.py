"""bench.busy: its neighbours end with it, it reads the chapters' own epoch
lines, and it ranks each setting against the best of its repeat."""
import os
import time

import pytest

from bench import busy
from d2lnets.training.loop import EPOCH_LINE


def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.exists('/proc'), reason='Linux only')
def test_neighbours_load_the_machine_and_end_with_the_block(tmp_path):
    with busy.Neighbours('spin', 2, 60, str(tmp_path)) as neighbours:
        time.sleep(0.3)
        pids = [p.pid for p in neighbours.procs]
        assert all(alive(pid) for pid in pids)
        assert busy.others_cpu(0.5) > 0.8  # two spinners on this machine's cores
    assert not any(alive(pid) for pid in pids)


def test_neighbours_cannot_outlive_their_time_limit(tmp_path):
    with busy.Neighbours('spin', 1, 1, str(tmp_path)) as neighbours:
        proc = neighbours.procs[0]
        assert proc.wait(timeout=10) == -9  # timeout -s KILL, even if the bench dies


@pytest.mark.skipif(not os.path.exists('/proc'), reason='Linux only')
def test_neighbours_run_at_the_niceness_asked_for(tmp_path):
    def niceness_once_started(pid):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # `nice` sets it, then runs the neighbour
            with open(f'/proc/{pid}/comm') as f:
                if f.read().strip() == 'timeout':
                    return os.getpriority(os.PRIO_PROCESS, pid)
            time.sleep(0.01)
        raise AssertionError('the neighbour did not start')

    with busy.Neighbours('spin', 1, 60, str(tmp_path), nice=19) as neighbours:
        assert niceness_once_started(neighbours.procs[0].pid) == 19
    with busy.Neighbours('spin', 1, 60, str(tmp_path)) as neighbours:
        assert niceness_once_started(neighbours.procs[0].pid) == os.nice(0)


def test_the_rate_is_read_from_the_chapters_epoch_line():
    lines = '\n'.join([EPOCH_LINE % (1, 2.3, 0.1, 0.1, 5.0, 400.0),
                       EPOCH_LINE % (2, 1.3, 0.5, 0.6, 4.0, 500.5)])
    assert busy.RATE.findall(lines) == ['400.0', '500.5']


def test_each_setting_is_ranked_against_the_best_of_its_repeat():
    rates = {'busy': {'a': [100.0, 50.0], 'b': [200.0, 25.0]}}
    table = busy.summarise(rates)['busy']
    assert table['a']['of_best'] == {'median': 0.75, 'min': 0.5, 'max': 1.0}
    assert table['b']['of_best'] == {'median': 0.75, 'min': 0.5, 'max': 1.0}
    assert table['b']['examples_per_s']['median'] == 112.5


def test_settings_are_taken_in_turn():
    names = ['a', 'b', 'c']
    assert [busy.rotated(names, r) for r in range(3)] == [['a', 'b', 'c'], ['b', 'c', 'a'],
                                                          ['c', 'a', 'b']]


def test_the_trainings_run_from_the_tree_asked_for_and_its_commit_is_recorded(tmp_path,
                                                                                monkeypatch):
    calls = []

    def fake_run(command, cwd, **kwargs):
        calls.append(cwd)
        raise RuntimeError('stop here')
    monkeypatch.setattr(busy.subprocess, 'run', fake_run)
    args = busy.parse_args(['--tree', str(tmp_path)])
    with pytest.raises(RuntimeError, match='stop here'):
        busy.run_training(args, {}, str(tmp_path))
    assert calls == [str(tmp_path)]
    assert busy.parse_args([]).tree == busy.REPO_ROOT
    monkeypatch.undo()
    assert len(busy.commit_of(busy.REPO_ROOT)) == 40 and busy.commit_of(str(tmp_path)) is None
