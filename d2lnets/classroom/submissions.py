"""Find a class's submissions in a folder and read them without trusting them.

One rule for every student: a student's code is every ``.py`` and ``.ipynb``
file handed in under their name -- ``alice.py``, ``alice.ipynb``, or any such
file directly inside a folder ``alice/`` -- run in the order of the file
names, as the cells of one notebook (a ``.py`` file is one cell). Their
files are copied side by side into the sandbox, so one may import another.

Names that start with a dot or with ``__`` (``.ipynb_checkpoints``,
``__pycache__``, ``__MACOSX``) are never students. Only regular files are
read: a link, a named pipe or a device is refused with a note, never opened
for reading in a way that could block or follow it, and a file larger than
`MAX_FILE_BYTES` is refused.
"""
import json
import os
import stat

SUFFIXES = ('.ipynb', '.py')
MAX_FILE_BYTES = 5 * 2 ** 20


def is_student_name(name):
    """Whether an entry of the submissions folder can be a student's."""
    return not name.startswith(('.', '__'))


def find_submissions(folder):
    """{student: [path, ...]} for the submissions in `folder`, names in order;
    a student whose folder holds no code has an empty list."""
    found = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not is_student_name(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            inside = sorted((e for e in os.scandir(entry.path)
                             if e.name.endswith(SUFFIXES) and is_student_name(e.name)),
                            key=lambda e: e.name)
            found.setdefault(entry.name, []).extend(e.path for e in inside)
        elif entry.name.endswith(SUFFIXES):
            found.setdefault(os.path.splitext(entry.name)[0], []).append(entry.path)
    return {student: sorted(paths, key=os.path.basename)
            for student, paths in sorted(found.items())}


def read_file(path):
    """The bytes of the regular file at `path`, read without following a link
    or blocking on a pipe; ValueError in one line otherwise."""
    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise ValueError(f'{name} cannot be opened ({err.strerror}): only plain files '
                         f'are graded') from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f'{name} is not a plain file: not graded')
        if info.st_size > MAX_FILE_BYTES:
            raise ValueError(f'{name} is larger than {MAX_FILE_BYTES // 2 ** 20} MiB: '
                             f'not graded')
        data = b''
        while len(data) <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f'{name} grew past {MAX_FILE_BYTES // 2 ** 20} MiB: not graded')
        return data
    finally:
        os.close(fd)


def read_cells(name, data):
    """The code in file `name` (its bytes `data`) as [label, source] pairs: a
    notebook's code cells ('cell 1', ...; IPython's %magic and !shell lines
    become `pass`), or a .py file whole. ValueError for an unreadable notebook."""
    text = data.decode('utf-8', errors='replace')
    if not name.endswith('.ipynb'):
        return [[name, text]]
    try:
        cells = [c for c in json.loads(text)['cells'] if c.get('cell_type') == 'code']
        sources = [''.join(c['source']) if isinstance(c['source'], list) else c['source']
                   for c in cells]
        if not all(isinstance(s, str) for s in sources):
            raise TypeError('a cell\'s source is not text')
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f'the notebook {name} cannot be read ({type(err).__name__}: '
                         f'{str(err)[:100]})') from None
    return [[f'cell {number}', _without_magics(source)]
            for number, source in enumerate(sources, 1)]


def _without_magics(source):
    """`source` with each magic line replaced by `pass` at the line's own
    indentation (IPython runs magics inside blocks too)."""
    return '\n'.join(line[:len(line) - len(line.lstrip())] + 'pass'
                     if line.lstrip().startswith(('%', '!')) else line
                     for line in source.splitlines())


def read_submission(paths):
    """(files, cells): each file's (name, bytes), and the cells of all of them
    in order (labels name the file when there are several). ValueError in one
    line for a file that is not a readable plain file or notebook."""
    files = [(os.path.basename(path), read_file(path)) for path in paths]
    cells = []
    for name, data in files:
        for label, source in read_cells(name, data):
            cells.append([label if len(files) == 1 or label == name else f'{name} {label}',
                          source])
    return files, cells
