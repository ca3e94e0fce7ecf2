"""The similarity report ranks a renamed copy first, above independent answers."""
import csv

from d2lnets.classroom.grade import main
from fire_answers import RIGHT

ANSWER = RIGHT
RENAMED = (ANSWER.replace('squeeze', 'sq').replace('expand', 'ex').replace('x)', 'data)')
           .replace('kwargs', 'kw'))
OTHER = '''
from mxnet import nd
from mxnet.gluon import nn


class Fire(nn.Block):
    """Squeeze with a 1x1 convolution, then expand along two paths."""

    def __init__(self, squeeze, expand):
        super().__init__()
        self.first = nn.Conv2D(squeeze, 1)
        self.left = nn.Conv2D(expand, 1)
        self.right = nn.Conv2D(expand, 3, padding=1)

    def forward(self, X):
        Y = nd.relu(self.first(X))
        return nd.concat(nd.relu(self.left(Y)), nd.relu(self.right(Y)), dim=1)
'''


def test_a_renamed_copy_ranks_first(tmp_path, capsys):
    subs = tmp_path / 'submissions'
    subs.mkdir()
    for name, text in (('ana.py', ANSWER), ('cop.py', RENAMED), ('ida.py', OTHER)):
        (subs / name).write_text(text)
    out = tmp_path / 'similarity.csv'
    main(['similarity', str(subs), '--assignment', 'fire', '--out', str(out)])
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['student', 'other', 'shared_of_student', 'shared_of_other']
    assert rows[1][:2] == ['ana', 'cop'] and float(rows[1][2]) > 0.9
    assert all(float(r[2]) < 0.5 and float(r[3]) < 0.5 for r in rows[2:])
    assert capsys.readouterr().out.splitlines()[0] == (
        f'ana ~ cop: {float(rows[1][2]):.0%} of ana\'s code, {float(rows[1][3]):.0%} of cop\'s')


# Pinned down by mutation testing (docs/results.md) -------------------------------

import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402
from copydetect import CodeFingerprint, compare_files  # noqa: E402

from d2lnets.classroom.assignments import template  # noqa: E402
from d2lnets.classroom.similarity import similar_pairs  # noqa: E402

EXPECTATIONS = os.path.join(os.path.dirname(__file__), 'expectations')
TEMPLATE_CODE = '\n'.join(c['source'] for c in template('fire')['cells']
                          if c['cell_type'] == 'code')


def fingerprint(code, boilerplate=()):
    """What the report's docs promise: Python tokens, matches of 25 tokens and
    more counted, of 30 and more always found, the template's own left out."""
    return CodeFingerprint('x.py', 25, 30 - 25 + 1, boilerplate=list(boilerplate),
                           fp=io.StringIO(code))


def shares(first, second):
    handed = fingerprint(TEMPLATE_CODE).hashes
    return compare_files(fingerprint(first, handed), fingerprint(second, handed))[1]


def write_students(folder, answers):
    folder.mkdir()
    for name, text in answers.items():
        (folder / name).write_text(text)


PARTLY = RIGHT + OTHER.replace('class Fire(', 'class Fire2(')  # a copy with more of its own


def test_the_pairs_are_every_pair_ranked_by_the_larger_share_with_both_shares(tmp_path):
    write_students(tmp_path / 's', {'ana.py': ANSWER, 'bea.py': PARTLY, 'cop.py': RENAMED,
                                    'ida.py': OTHER})
    pairs = similar_pairs(str(tmp_path / 's'), 'fire')
    expected = []
    texts = {'ana': ANSWER, 'bea': PARTLY, 'cop': RENAMED, 'ida': OTHER}
    for i, first in enumerate(sorted(texts)):
        for second in sorted(texts)[i + 1:]:
            a, b = shares(texts[first], texts[second])
            expected.append((max(a, b), first, second, a, b))
    expected.sort(key=lambda p: (-p[0], p[1], p[2]))
    assert pairs == expected
    assert len(pairs) == 6 and ('ana', 'cop') in [p[1:3] for p in pairs if p[0] > 0.9]
    # bea holds all of ana's code and more: ana's share is the larger one.
    (ab,) = [p for p in pairs if p[1:3] == ('ana', 'bea')]
    assert ab[3] > ab[4] and ab[0] == ab[3]


def test_the_templates_code_is_left_out_of_what_is_shared(tmp_path):
    """Two students who handed in the template's code as it is, plus a few
    lines of their own (long enough that copydetect's winnowing, which
    hashes with Python's salted hash(), keeps some of them under every hash
    seed): what the template gives them counts less."""
    ana = TEMPLATE_CODE + ('\ndef scale(values, factor):\n'
                           '    return [value * factor for value in values if value > 0]\n')
    bea = TEMPLATE_CODE + ('\nclass Counter:\n    def __init__(self):\n'
                           '        self.seen = {}\n\n    def add(self, key):\n'
                           '        self.seen[key] = self.seen.get(key, 0) + 1\n')
    write_students(tmp_path / 's', {'ana.py': ana, 'bea.py': bea})
    a, b = shares(ana, bea)
    assert similar_pairs(str(tmp_path / 's'), 'fire') == [(max(a, b), 'ana', 'bea', a, b)]
    whole = compare_files(fingerprint(ana), fingerprint(bea))[1]
    assert b < whole[1]


def test_equal_shares_rank_by_the_students_names(tmp_path):
    write_students(tmp_path / 's', {'cy.py': ANSWER, 'al.py': ANSWER, 'bo.py': ANSWER})
    assert [p[1:3] for p in similar_pairs(str(tmp_path / 's'), 'fire')] == [
        ('al', 'bo'), ('al', 'cy'), ('bo', 'cy')]
    assert {p[0] for p in similar_pairs(str(tmp_path / 's'), 'fire')} == {1.0}


def test_a_submission_that_cannot_be_read_is_left_out(tmp_path):
    write_students(tmp_path / 's', {'ana.py': ANSWER, 'cop.py': RENAMED,
                                    'bad.ipynb': '{"not": "a notebook"'})
    assert [p[1:3] for p in similar_pairs(str(tmp_path / 's'), 'fire')] == [('ana', 'cop')]


def test_the_report_writes_every_pair_and_prints_the_top_ten_by_default(tmp_path, capsys,
                                                                       monkeypatch):
    texts = {f's{i}.py': OTHER.replace('Y = ', f'Y{i} = ').replace('(Y)', f'(Y{i})')
             for i in range(5)}
    texts['s5.py'] = ANSWER
    write_students(tmp_path / 's', texts)
    monkeypatch.chdir(tmp_path)
    main(['similarity', 's', '--assignment', 'fire'])
    pairs = similar_pairs('s', 'fire')
    with open(tmp_path / 'similarity.csv', newline='') as f:
        assert f.read() == 'student,other,shared_of_student,shared_of_other\r\n' + ''.join(
            f'{s},{o},{a:.2f},{b:.2f}\r\n' for _, s, o, a, b in pairs)
    assert len(pairs) == 15
    assert capsys.readouterr().out == ''.join(
        f"{s} ~ {o}: {a:.0%} of {s}'s code, {b:.0%} of {o}'s\n"
        for _, s, o, a, b in pairs[:10]) + 'wrote similarity.csv\n'
    main(['similarity', 's', '--assignment', 'fire', '--top', '2', '--out', 'two.csv'])
    assert capsys.readouterr().out.splitlines()[2:] == ['wrote two.csv']


def test_the_similarity_help_names_every_option(capsys, monkeypatch):
    monkeypatch.setenv('COLUMNS', '80')
    with pytest.raises(SystemExit) as info:
        main(['similarity', '--help'])
    assert info.value.code == 0
    with open(os.path.join(EXPECTATIONS, 'grade_similarity_help.txt')) as f:
        assert capsys.readouterr().out.replace('optional arguments:', 'options:') == f.read()


def test_the_similarity_report_needs_its_assignment(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(['similarity', str(tmp_path)])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        'python -m d2lnets.grade similarity: error: the following arguments are required: '
        '--assignment')


def test_equal_shares_rank_by_the_first_student_then_the_second(tmp_path):
    write_students(tmp_path / 's', {f'{n}.py': ANSWER for n in ('al', 'bo', 'cy', 'di')})
    assert [p[1:3] for p in similar_pairs(str(tmp_path / 's'), 'fire')] == [
        ('al', 'bo'), ('al', 'cy'), ('al', 'di'), ('bo', 'cy'), ('bo', 'di'), ('cy', 'di')]
    # al's code lies whole in bo's, cy's whole in al's: both pairs share 100%,
    # ranked by the names, not by the first student's share.
    write_students(tmp_path / 't', {'al.py': ANSWER, 'bo.py': PARTLY,
                                    'cy.py': ANSWER[:ANSWER.index('    def hybrid_forward')]})
    pairs = similar_pairs(str(tmp_path / 't'), 'fire')
    assert [p[1:3] for p in pairs[:2]] == [('al', 'bo'), ('al', 'cy')]
    assert pairs[0][0] == pairs[1][0] == 1.0 and pairs[1][3] < pairs[0][3]


def test_a_notebooks_cells_are_read_as_one_text(tmp_path):
    """A notebook is its code cells joined by line breaks: the same answer in
    two cells shares all its code with the same answer as one file."""
    split = ANSWER.index('\nclass Fire')
    cells = [{'cell_type': 'code', 'metadata': {}, 'source': part, 'outputs': [],
              'execution_count': None} for part in (ANSWER[:split], ANSWER[split + 1:])]
    (tmp_path / 's').mkdir()
    (tmp_path / 's' / 'ana.ipynb').write_text(json.dumps({'cells': cells}))
    (tmp_path / 's' / 'bea.py').write_text(ANSWER)
    assert similar_pairs(str(tmp_path / 's'), 'fire') == [(1.0, 'ana', 'bea', 1.0, 1.0)]
