"""The gradebook in the grader's own process: its rows and points, merging
with the history of replaced rows, the roster, and the Canvas and Moodle
exports; each file written whole, replacing a link rather than writing
through it."""
import csv
import os
import re

import pytest

from d2lnets.classroom.assignments import get_assignment
from d2lnets.classroom.checker import CheckResult
from d2lnets.classroom.gradebook import (Graded, canvas_rows, column, export, header,
                                         history_path, keep_in_history, moodle_rows, points,
                                         read_roster, read_rows, row, write_rows)

FIRE = get_assignment('fire')     # checks worth 1 (public) and 2 (hidden) points
HEADER = ['student', 'score', 'out_of', 'percent', 'Fire(2, 4) on 1x6x7x7',
          'hidden: Fire(3, 5) on 2x4x5x5']


def graded(student, *statuses):
    return Graded(student, [(s, CheckResult(s == 'pass', '')) for s in statuses], [])


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


def test_columns_points_and_rows():
    assert [column(c) for c in FIRE.checks] == HEADER[4:]
    assert header(FIRE) == HEADER
    assert points(FIRE, graded('a', 'pass', 'fail')) == (1, 3)
    assert points(FIRE, graded('a', 'error', 'pass')) == (2, 3)
    assert points(FIRE, graded('a', 'timeout', 'not run')) == (0, 3)
    assert row(FIRE, graded('ana', 'pass', 'fail')) == ['ana', '1', '3', '33.3', 'pass', 'fail']
    assert row(FIRE, graded('ben', 'fail', 'pass')) == ['ben', '2', '3', '66.7', 'fail', 'pass']
    assert row(FIRE, graded('cy', 'pass', 'pass')) == ['cy', '3', '3', '100.0', 'pass', 'pass']


def test_rows_are_written_by_name_and_read_back(tmp_path):
    path = tmp_path / 'grades.csv'
    assert read_rows(str(path), FIRE) == {}
    rows = {'ben': row(FIRE, graded('ben', 'fail', 'pass')),
            'ana': row(FIRE, graded('ana', 'pass', 'fail'))}
    write_rows(str(path), FIRE, rows)
    assert read_csv(path) == [HEADER, rows['ana'], rows['ben']]
    assert read_rows(str(path), FIRE) == rows
    assert os.listdir(tmp_path) == ['grades.csv']      # no temporary file left behind
    with open(path, 'a') as f:
        f.write('\n')                                   # a blank line is no student
    assert read_rows(str(path), FIRE) == rows


def test_another_assignments_gradebook_is_refused(tmp_path):
    path = tmp_path / 'grades.csv'
    write_rows(str(path), get_assignment('residual'), {})
    with pytest.raises(ValueError) as err:
        read_rows(str(path), FIRE)
    assert str(err.value) == (f'{path} is not a gradebook of fire (its columns differ): give '
                              f'another --out')
    path.write_text('')
    with pytest.raises(ValueError, match='is not a gradebook of fire'):
        read_rows(str(path), FIRE)


def test_the_gradebook_replaces_a_link_instead_of_writing_through_it(tmp_path):
    target = tmp_path / 'somewhere-else.csv'
    target.write_text('not to be touched\n')
    link = tmp_path / 'grades.csv'
    link.symlink_to(target)
    write_rows(str(link), FIRE, {'ana': row(FIRE, graded('ana', 'pass', 'pass'))})
    assert target.read_text() == 'not to be touched\n'
    assert not link.is_symlink() and read_csv(link)[1][0] == 'ana'


def test_replaced_rows_go_to_the_history_with_the_time(tmp_path):
    assert history_path(os.path.join('class', 'grades.csv')) == os.path.join(
        'class', 'grades-history.csv')
    assert history_path('grades') == 'grades-history.csv'
    assert history_path('marks.tsv') == 'marks-history.tsv'
    path = str(tmp_path / 'grades.csv')
    keep_in_history(path, FIRE, [])
    assert os.listdir(tmp_path) == []
    first = row(FIRE, graded('ana', 'fail', 'fail'))
    second = row(FIRE, graded('ben', 'pass', 'fail'))
    keep_in_history(path, FIRE, [first])
    keep_in_history(path, FIRE, [second])
    history = read_csv(tmp_path / 'grades-history.csv')
    assert history[0] == ['replaced_at'] + HEADER
    assert [r[1:] for r in history[1:]] == [first, second]
    for r in history[1:]:
        assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d', r[0])


ROSTER = ('\ufeffstudent,name,id,sis_user_id,sis_login_id,section,email,extra\n'
          ' ana ,Ana Lima,101,S1,ana@uni.edu,A,ana@uni.edu,x\n'
          'ben,,102,S2,ben@uni.edu,A,ben@uni.edu,y\n'
          ',Nobody,0,,,,,\n'
          'carl,Carl Sto,103\n')


def test_the_roster_reads_every_field_and_skips_rows_without_a_student(tmp_path):
    path = tmp_path / 'students.csv'
    path.write_text(ROSTER, encoding='utf-8')
    people = read_roster(str(path))
    assert people == [
        {'student': 'ana', 'name': 'Ana Lima', 'id': '101', 'sis_user_id': 'S1',
         'sis_login_id': 'ana@uni.edu', 'section': 'A', 'email': 'ana@uni.edu'},
        {'student': 'ben', 'name': '', 'id': '102', 'sis_user_id': 'S2',
         'sis_login_id': 'ben@uni.edu', 'section': 'A', 'email': 'ben@uni.edu'},
        {'student': 'carl', 'name': 'Carl Sto', 'id': '103', 'sis_user_id': '',
         'sis_login_id': '', 'section': '', 'email': ''}]


@pytest.mark.parametrize('text, words', [
    ('name,id\nAna,1\n', '{path} has no "student" column: its first row must name the '
                         'columns, one of them "student" (the submission\'s name)'),
    ('', '{path} has no "student" column: its first row must name the columns, one of them '
         '"student" (the submission\'s name)'),
    ('student\n.ana\n', '{path}: \'.ana\' cannot be a submission\'s name (it starts with . or '
                        '__, or holds /)'),
    ('student\n__ana\n', '{path}: \'__ana\' cannot be a submission\'s name (it starts with . '
                         'or __, or holds /)'),
    ('student\nana/../../x\n', '{path}: \'ana/../../x\' cannot be a submission\'s name (it '
                               'starts with . or __, or holds /)'),
])
def test_a_roster_that_cannot_be_read_says_why(tmp_path, text, words):
    path = tmp_path / 'students.csv'
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        read_roster(str(path))
    assert str(err.value) == words.format(path=path)


def test_the_exports_for_canvas_and_moodle(tmp_path):
    roster_path = tmp_path / 'students.csv'
    roster_path.write_text(ROSTER, encoding='utf-8')
    roster = read_roster(str(roster_path))
    rows = {'ana': row(FIRE, graded('ana', 'pass', 'pass')),
            'ben': row(FIRE, graded('ben', 'fail', 'pass'))}
    assert canvas_rows(rows, roster, FIRE, '4711') == [
        ['Student', 'ID', 'SIS User ID', 'SIS Login ID', 'Section',
         'Write the Fire module (4711)'],
        ['    Points Possible', '', '', '', '', '3'],
        ['Ana Lima', '101', 'S1', 'ana@uni.edu', 'A', '3'],
        ['ben', '102', 'S2', 'ben@uni.edu', 'A', '2'],
        ['Carl Sto', '103', '', '', '', '']]
    assert moodle_rows(rows, roster, FIRE) == [
        ['Email address', 'ID number', 'Write the Fire module'],
        ['ana@uni.edu', '101', '3'], ['ben@uni.edu', '102', '2'], ['', '103', '']]
    gradebook = tmp_path / 'grades.csv'
    write_rows(str(gradebook), FIRE, rows)
    export(str(gradebook), FIRE, str(roster_path), 'canvas', str(tmp_path / 'c.csv'), '4711')
    assert read_csv(tmp_path / 'c.csv') == canvas_rows(rows, roster, FIRE, '4711')
    export(str(gradebook), FIRE, str(roster_path), 'moodle', str(tmp_path / 'm.csv'))
    assert read_csv(tmp_path / 'm.csv') == moodle_rows(rows, roster, FIRE)
    with pytest.raises(ValueError) as err:
        export(str(gradebook), FIRE, str(roster_path), 'canvas', str(tmp_path / 'x.csv'))
    assert str(err.value) == ('a Canvas export needs the assignment\'s Canvas id: --canvas-id '
                              '(the number in its address)')
    assert not (tmp_path / 'x.csv').exists()


def test_a_gradebook_is_written_to_a_hidden_file_beside_it_then_renamed(tmp_path, monkeypatch):
    """Whole or not at all: the rename is atomic only within one folder, and a
    file left by a crash is hidden (.grades-*.csv)."""
    monkeypatch.setattr('tempfile.tempdir', str(tmp_path / 'elsewhere'))
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, 'replace', lambda src, dst: (renamed.append(src), real(src, dst)))
    (tmp_path / 'class').mkdir()
    write_rows(str(tmp_path / 'class' / 'grades.csv'), FIRE, {})
    (temporary,) = renamed
    assert os.path.dirname(temporary) == str(tmp_path / 'class')
    name = os.path.basename(temporary)
    assert name.startswith('.grades-') and name.endswith('.csv')


def test_names_and_fields_with_line_breaks_are_read_back_as_written(tmp_path):
    """CSV files are opened with newline='' as the csv module asks: a quoted
    line break, or a carriage return in a file name, survives."""
    path = tmp_path / 'grades.csv'
    rows = {'a\rb': row(FIRE, graded('a\rb', 'pass', 'fail'))}
    write_rows(str(path), FIRE, rows)
    keep_in_history(str(path), FIRE, [rows['a\rb']])
    assert read_rows(str(path), FIRE) == rows
    with open(tmp_path / 'grades-history.csv', newline='') as f:
        assert list(csv.reader(f))[1][1] == 'a\rb'
    roster = tmp_path / 'students.csv'
    roster.write_bytes(b'student,name\r\nana,"Ana\r\nLima"\r\n')
    assert read_roster(str(roster))[0]['name'] == 'Ana\r\nLima'
