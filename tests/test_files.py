"""Files are replaced whole or not at all."""
import os

import pytest

from d2lnets._files import replacing, write_text


def test_write_text_replaces_the_file(tmp_path):
    path = tmp_path / 'history.json'
    path.write_text('old')
    write_text(str(path), 'new')
    assert path.read_text() == 'new' and os.listdir(tmp_path) == ['history.json']


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'best.params'
    path.write_text('the earlier best')
    with pytest.raises(OSError, match='disk full'):
        with replacing(str(path)) as tmp:
            with open(tmp, 'w') as f:
                f.write('half of it')
            raise OSError('disk full')
    assert path.read_text() == 'the earlier best' and os.listdir(tmp_path) == ['best.params']


def test_the_file_gets_the_permissions_any_written_file_gets(tmp_path):
    """Not mkstemp's owner-only 0600: best.params or history.json shared on a
    machine stays as readable as the rest of the run's files."""
    plain = tmp_path / 'plain'
    plain.write_text('x')
    write_text(str(tmp_path / 'history.json'), 'x')
    with replacing(str(tmp_path / 'best.params')) as tmp:
        with open(tmp, 'wb') as f:
            f.write(b'x')
    mode = plain.stat().st_mode & 0o777
    assert (tmp_path / 'history.json').stat().st_mode & 0o777 == mode
    assert (tmp_path / 'best.params').stat().st_mode & 0o777 == mode
