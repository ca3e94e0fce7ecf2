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
