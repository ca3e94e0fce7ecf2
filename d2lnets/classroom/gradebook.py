"""The gradebook: one CSV per assignment, its history, the roster and LMS exports.

The gradebook has a row per student: ``student, score, out_of, percent``
(points: each check is worth its `Check.points`), then each check's status
(pass, fail, error, timeout or not run; hidden checks' columns start with
``hidden:``). Grading again merges: the students graded now get new rows,
the others keep theirs, and every replaced row goes to the history file
(``grades-history.csv`` beside ``grades.csv``) with the time it was replaced.

The roster (``--roster students.csv``) is a CSV with a ``student`` column
(the submission's name) and, for the exports, any of ``name``, ``id``,
``sis_user_id``, ``sis_login_id``, ``section`` and ``email``.
"""
import csv
import datetime
import os
import tempfile
from collections import namedtuple

from .submissions import is_student_name

Graded = namedtuple('Graded', 'student results notes')   # results: [(status, CheckResult)]
ROSTER_FIELDS = ('student', 'name', 'id', 'sis_user_id', 'sis_login_id', 'section', 'email')


def column(check):
    """A check's column: its label, 'hidden: ' first for a hidden check."""
    return f'{"hidden: " if check.hidden else ""}{check.label}'


def header(assignment):
    return ['student', 'score', 'out_of', 'percent'] + [column(c) for c in assignment.checks]


def points(assignment, graded):
    """(points earned, points possible) of `graded`."""
    earned = sum(c.points for c, (status, _) in zip(assignment.checks, graded.results)
                 if status == 'pass')
    return earned, sum(c.points for c in assignment.checks)


def row(assignment, graded):
    earned, possible = points(assignment, graded)
    return ([graded.student, str(earned), str(possible), f'{100 * earned / possible:.1f}']
            + [status for status, _ in graded.results])


def read_rows(path, assignment):
    """{student: row} of the gradebook at `path`; {} when there is none yet.
    ValueError when it is another assignment's (its columns differ)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != header(assignment):
        raise ValueError(f'{path} is not a gradebook of {assignment.name} (its columns '
                         f'differ): give another --out')
    return {r[0]: r for r in rows[1:] if r}


def write_rows(path, assignment, rows):
    """Write the gradebook `rows` ({student: row}) to `path`, whole or not at all."""
    _write_csv(path, [header(assignment)] + [rows[s] for s in sorted(rows)])


def history_path(path):
    stem, suffix = os.path.splitext(path)
    return f'{stem}-history{suffix or ".csv"}'


def keep_in_history(path, assignment, old_rows):
    """Append the replaced `old_rows` to the gradebook's history file."""
    if not old_rows:
        return
    target = history_path(path)
    new = not os.path.exists(target)
    when = datetime.datetime.now().isoformat(timespec='seconds')
    with open(target, 'a', newline='') as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(['replaced_at'] + header(assignment))
        writer.writerows([when] + r for r in old_rows)


def read_roster(path):
    """The roster's rows as dicts (ROSTER_FIELDS, missing ones empty), in order."""
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        if 'student' not in (reader.fieldnames or []):
            raise ValueError(f'{path} has no "student" column: its first row must name the '
                             f'columns, one of them "student" (the submission\'s name)')
        people = [{key: (r.get(key) or '').strip() for key in ROSTER_FIELDS} for r in reader
                  if (r.get('student') or '').strip()]
    for person in people:
        if not is_student_name(person['student']) or os.sep in person['student']:
            raise ValueError(f'{path}: {person["student"]!r} cannot be a submission\'s name '
                             f'(it starts with . or __, or holds {os.sep})')
    return people


def canvas_rows(rows, roster, assignment, assignment_id):
    """A Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID,
    Section, then '<assignment title> (<Canvas assignment id>)' with the points."""
    title = f'{assignment.title} ({assignment_id})'
    possible = sum(c.points for c in assignment.checks)
    lines = [['Student', 'ID', 'SIS User ID', 'SIS Login ID', 'Section', title],
             ['    Points Possible', '', '', '', '', str(possible)]]
    for person in roster:
        graded = rows.get(person['student'])
        lines.append([person['name'] or person['student'], person['id'], person['sis_user_id'],
                      person['sis_login_id'], person['section'], graded[1] if graded else ''])
    return lines


def moodle_rows(rows, roster, assignment):
    """A Moodle grade import: 'Email address', 'ID number', then the points
    under the assignment's title (map them in Moodle's import page)."""
    lines = [['Email address', 'ID number', assignment.title]]
    for person in roster:
        graded = rows.get(person['student'])
        lines.append([person['email'], person['id'], graded[1] if graded else ''])
    return lines


def export(path, assignment, roster_path, lms, out, assignment_id=''):
    """Write the gradebook at `path` as `lms` ('canvas' or 'moodle') imports it."""
    rows = read_rows(path, assignment)
    roster = read_roster(roster_path)
    if lms == 'canvas':
        if not assignment_id:
            raise ValueError('a Canvas export needs the assignment\'s Canvas id: '
                             '--canvas-id (the number in its address)')
        lines = canvas_rows(rows, roster, assignment, assignment_id)
    else:
        lines = moodle_rows(rows, roster, assignment)
    _write_csv(out, lines)


def _write_csv(path, lines):
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix='.grades-', suffix='.csv')
    with os.fdopen(handle, 'w', newline='') as f:
        csv.writer(f).writerows(lines)
    os.replace(temporary, path)   # replaces a link rather than writing through it
