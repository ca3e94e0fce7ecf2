"""Pairs of submissions whose code is near-identical once names are changed.

``python -m d2lnets.grade similarity SUBMISSIONS/ --assignment residual``
fingerprints each student's code (every cell of every file, as the grader
reads it) with copydetect (Stanford MOSS's winnowing: the code is tokenized
with every variable, function and class name made the same, then hashed in
k-grams), leaves out what the template hands out, and ranks every pair by
the share of their code the two have in common. It reads the files as plain
files (`submissions.read_submission`) and runs none of them.
"""
import argparse
import csv
import io

from copydetect import CodeFingerprint, compare_files

from .assignments import ASSIGNMENTS, get_assignment, template
from .submissions import find_submissions, read_submission

NOISE_TOKENS = 25       # shorter matches are ignored (copydetect's default noise threshold)
GUARANTEE_TOKENS = 30   # longer matches are always found (copydetect's default)


def _fingerprint(name, code, boilerplate=()):
    return CodeFingerprint(f'{name}.py', NOISE_TOKENS, GUARANTEE_TOKENS - NOISE_TOKENS + 1,
                           boilerplate=list(boilerplate), fp=io.StringIO(code))


def handed_out(assignment):
    """The fingerprints of the code the template gives every student."""
    code = '\n'.join(c['source'] for c in template(assignment.name)['cells']
                     if c['cell_type'] == 'code')
    return _fingerprint('template', code).hashes


def similar_pairs(folder, assignment_name):
    """[(share, student, other, share of student's code, share of other's)],
    the most similar pair first; share is the larger of the two."""
    boilerplate = handed_out(get_assignment(assignment_name))
    prints = {}
    for student, paths in find_submissions(folder).items():
        try:
            _, cells = read_submission(paths)
        except ValueError:
            continue
        prints[student] = _fingerprint(student, '\n'.join(s for _, s in cells), boilerplate)
    students = sorted(prints)
    pairs = []
    for i, first in enumerate(students):
        for second in students[i + 1:]:
            _, (a, b), _ = compare_files(prints[first], prints[second])
            pairs.append((max(a, b), first, second, a, b))
    return sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))


def main(argv):
    parser = argparse.ArgumentParser(
        prog='python -m d2lnets.grade similarity',
        description='Rank pairs of submissions by how much code they share once names are '
                    'changed (copydetect\'s winnowing); runs none of them.')
    parser.add_argument('submissions', help='the folder of submissions')
    parser.add_argument('--assignment', required=True, choices=sorted(ASSIGNMENTS))
    parser.add_argument('--out', default='similarity.csv', help='the ranked pairs (CSV)')
    parser.add_argument('--top', type=int, default=10, help='pairs to print (default 10)')
    args = parser.parse_args(argv)
    pairs = similar_pairs(args.submissions, args.assignment)
    with open(args.out, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['student', 'other', 'shared_of_student', 'shared_of_other'])
        writer.writerows([s, o, f'{a:.2f}', f'{b:.2f}'] for _, s, o, a, b in pairs)
    for _, student, other, a, b in pairs[:args.top]:
        print(f'{student} ~ {other}: {a:.0%} of {student}\'s code, {b:.0%} of {other}\'s')
    print(f'wrote {args.out}')
