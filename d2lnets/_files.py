"""Write a file so that a reader never sees half of it: into a temporary file
beside it, renamed over it only once complete (a rename within a directory is
atomic), and removed when writing fails."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path in `path`'s directory to write; when the block
    ends without an exception, rename it to `path`; in any case leave no
    temporary file behind."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(path)}.',
                               suffix='.part')
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Write `text` to `path` atomically."""
    with replacing(path) as tmp, open(tmp, 'w') as f:
        f.write(text)
