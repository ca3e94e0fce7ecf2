"""Reading a class's submissions in the grader's own process: which entries
are students, the order of their files, and reading each file without
following a link, blocking on a pipe or reading past the size limit."""
import json
import os

import pytest

from d2lnets.classroom import submissions
from d2lnets.classroom.submissions import (MAX_FILE_BYTES, find_submissions, read_cells,
                                           read_file, read_submission)


def write(folder, name, text=''):
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return path


def notebook(*sources):
    return json.dumps({'cells': [{'cell_type': 'code', 'source': s} for s in sources]
                       + [{'cell_type': 'markdown', 'source': '# words'}]}).encode()


def test_a_students_files_in_name_order_and_nothing_else(tmp_path):
    write(tmp_path, 'ana.py')
    write(tmp_path, 'ana/0.py')
    write(tmp_path, 'ana/notes.txt')
    write(tmp_path, 'ana/.secret.py')
    write(tmp_path, 'ana/__init__.py')
    write(tmp_path, 'eve/readme.md')
    found = find_submissions(str(tmp_path))
    assert {s: [os.path.relpath(p, tmp_path) for p in paths] for s, paths in found.items()} == {
        'ana': [os.path.join('ana', '0.py'), 'ana.py'], 'eve': []}


def test_a_linked_folder_is_no_student(tmp_path):
    """A link named like a student may point anywhere (another student's folder,
    the teacher's files): it is not followed."""
    write(tmp_path / 'elsewhere', 'answer.py', 'x = 1')
    subs = tmp_path / 'subs'
    write(subs, 'ana.py')
    (subs / 'mallory').symlink_to(tmp_path / 'elsewhere')
    assert list(find_submissions(str(subs))) == ['ana']


def test_links_pipes_and_large_files_are_refused_in_one_line(tmp_path):
    target = write(tmp_path, 'target.py', 'secret = 1')
    (tmp_path / 'link.py').symlink_to(target)
    with pytest.raises(ValueError) as err:
        read_file(str(tmp_path / 'link.py'))
    assert str(err.value) == ('link.py cannot be opened (Too many levels of symbolic links): '
                              'only plain files are graded')
    os.mkfifo(tmp_path / 'pipe.py')     # opened without blocking, then refused
    with pytest.raises(ValueError) as err:
        read_file(str(tmp_path / 'pipe.py'))
    assert str(err.value) == 'pipe.py is not a plain file: not graded'
    with open(tmp_path / 'big.py', 'wb') as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ValueError) as err:
        read_file(str(tmp_path / 'big.py'))
    assert str(err.value) == 'big.py is larger than 5 MiB: not graded'


def test_a_file_of_exactly_the_limit_is_read_whole(tmp_path):
    with open(tmp_path / 'full.py', 'wb') as f:
        f.write(b'#' * (MAX_FILE_BYTES - 1) + b'\n')
    data = read_file(str(tmp_path / 'full.py'))
    assert len(data) == MAX_FILE_BYTES and data.endswith(b'#\n')


def test_a_file_that_grows_past_the_limit_while_read_is_refused(tmp_path, monkeypatch):
    with open(tmp_path / 'growing.py', 'wb') as f:
        f.truncate(MAX_FILE_BYTES + 1)
    real = os.fstat

    class Small:   # what fstat saw before the file grew
        def __init__(self, info):
            self.st_mode, self.st_size = info.st_mode, 10

    monkeypatch.setattr(submissions.os, 'fstat', lambda fd: Small(real(fd)))
    with pytest.raises(ValueError) as err:
        read_file(str(tmp_path / 'growing.py'))
    assert str(err.value) == 'growing.py grew past 5 MiB: not graded'


def test_cells_of_a_notebook_and_of_a_py_file():
    assert read_cells('a.ipynb', notebook(['x = 1\n', 'y = 2'], 'z = 3')) == [
        ['cell 1', 'x = 1\ny = 2'], ['cell 2', 'z = 3']]
    assert read_cells('a.py', b'name = "\xe9"') == [['a.py', 'name = "\ufffd"']]


def test_magics_become_pass_where_they_stand():
    source = ('%matplotlib inline\n!pip install x\nfor i in range(2):\n    %time f(i)\n'
              '    !ls\nx = 5 % 2')
    assert read_cells('a.ipynb', notebook(source)) == [[
        'cell 1', 'pass\npass\nfor i in range(2):\n    pass\n    pass\nx = 5 % 2']]
    compile(read_cells('a.ipynb', notebook(source))[0][1], 'cell', 'exec')


@pytest.mark.parametrize('data, words', [
    (b'{not json', 'JSONDecodeError: Expecting property name enclosed in double quotes: line 1 '
                   'column 2 (char 1)'),
    (b'{"cells": 5}', 'TypeError: \'int\' object is not iterable'),
    (b'{}', 'KeyError: \'cells\''),
    (b'{"cells": ["x"]}', 'AttributeError: \'str\' object has no attribute \'get\''),
    (b'{"cells": [{"cell_type": "code", "source": 5}]}',
     'TypeError: a cell\'s source is not text'),
    (b'{"cells": [{"cell_type": "code", "source": [1]}]}',
     'TypeError: sequence item 0: expected str instance, int found'),
])
def test_a_notebook_that_cannot_be_read_says_why(data, words):
    with pytest.raises(ValueError) as err:
        read_cells('bad.ipynb', data)
    assert str(err.value) == f'the notebook bad.ipynb cannot be read ({words})'


def test_a_submission_of_several_files_labels_cells_by_file(tmp_path):
    one = write(tmp_path, 'ana.py', 'a = 1')
    two = tmp_path / 'ana' / 'work.ipynb'
    two.parent.mkdir()
    two.write_bytes(notebook('b = 2'))
    files, cells = read_submission([one, str(two)])
    assert files == [('ana.py', b'a = 1'), ('work.ipynb', notebook('b = 2'))]
    assert cells == [['ana.py', 'a = 1'], ['work.ipynb cell 1', 'b = 2']]
    assert read_submission([str(two)])[1] == [['cell 1', 'b = 2']]
