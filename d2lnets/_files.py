"""Write a file so that a reader never sees half of it: into a temporary file
beside it, renamed over it only once complete (a rename within a directory is
atomic), and removed when writing fails. The writer creates the temporary
file itself, so the result has the permissions any file it writes gets
(`tempfile.mkstemp` would make it readable by its owner only)."""
import contextlib
import os
import uuid


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path (not yet created) in `path`'s directory to
    write; when the block ends without an exception, rename it to `path`; in
    any case leave no temporary file behind."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f'.{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part')
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


def save_figure(figure, path, **savefig_options):
    """Write a Matplotlib `figure` to `path` atomically: a failed write (a full
    disk, say) leaves the earlier file, or none, never a cut-off or 0-byte one.
    The format comes from `path`'s extension, as `savefig` would take it."""
    image_format = os.path.splitext(path)[1].lstrip('.').lower() or None
    with replacing(path) as tmp:
        figure.savefig(tmp, format=image_format, **savefig_options)
