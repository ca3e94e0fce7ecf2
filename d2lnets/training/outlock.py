"""One run at a time per output directory.

`OutputLock(directory)` takes an exclusive `flock` on `directory/.lock` for as
long as the run lasts; a second run into the same directory is refused with
`OutputBusyError` instead of overwriting the first one's files. The operating
system releases the lock when the process ends, however it ends (even a
SIGKILL), so a killed run never leaves a stale lock behind.
"""
import errno
import fcntl
import os

LOCK = '.lock'


class OutputBusyError(RuntimeError):
    """Another process holds the output directory."""


class OutputLock:
    """Context manager holding the lock on `directory` (created if need be)."""

    def __init__(self, directory):
        self.directory = directory
        self._file = None

    def __enter__(self):
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, LOCK)
        lock_file = open(path, 'a+')
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            lock_file.seek(0)
            holder = lock_file.read().strip() or 'another process'
            lock_file.close()
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise OutputBusyError(f'{self.directory} is in use by another run ({holder}); '
                                  f'wait for it to finish or pass another --out') from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f'pid {os.getpid()}\n')
        lock_file.flush()
        self._file = lock_file
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
