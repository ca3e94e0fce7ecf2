"""One run at a time per output directory (d2lnets.training.outlock), in one
process: a second open file description of the lock file stands for another
process (flock locks belong to the open file, not the process)."""
import fcntl
import os

import pytest

from d2lnets.training.outlock import OutputBusyError, OutputLock


def test_the_lock_file_names_its_holder_and_is_released_on_exit(tmp_path):
    out = tmp_path / 'new' / 'run'
    (tmp_path / 'new').mkdir()
    lock = OutputLock(str(out))
    with lock as held:
        assert held is lock
        path = out / '.lock'
        assert path.read_text() == f'pid {os.getpid()}\n'  # flushed, readable by others
        with open(path) as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(out / '.lock') as other:  # released
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(other, fcntl.LOCK_UN)
    with OutputLock(str(out)):  # taken again into the same, existing folder
        pass


def test_a_longer_earlier_holder_is_overwritten(tmp_path):
    (tmp_path / '.lock').write_text('pid 123456789012345 of an earlier run\n')
    with OutputLock(str(tmp_path)):
        assert (tmp_path / '.lock').read_text() == f'pid {os.getpid()}\n'


def test_a_busy_directory_names_the_holder_or_another_process(tmp_path):
    with OutputLock(str(tmp_path)):
        with pytest.raises(OutputBusyError) as info:
            with OutputLock(str(tmp_path)):
                pass
    assert str(info.value) == (f'{tmp_path} is in use by another run (pid {os.getpid()}); wait '
                               f'for it to finish or pass another --out')
    with open(tmp_path / '.lock', 'w') as holder:  # a holder that wrote nothing
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OutputBusyError) as info:
            with OutputLock(str(tmp_path)):
                pass
    assert str(info.value) == (f'{tmp_path} is in use by another run (another process); wait '
                               f'for it to finish or pass another --out')
