"""The per-epoch history (d2lnets.training.history): its record check, the
JSON it writes and reads back."""
import json

import pytest

from d2lnets.training.history import FIELDS, History

RECORD = {'epoch': 1, 'loss': 2.25, 'train_acc': 0.25, 'test_acc': 0.5, 'time': 1.5,
          'examples_per_sec': 100.0}


def test_a_record_must_have_every_field():
    assert FIELDS == ('epoch', 'loss', 'train_acc', 'test_acc', 'time', 'examples_per_sec')
    history = History()
    with pytest.raises(ValueError) as info:
        history.append(epoch=1, loss=2.0, time=1.0)
    assert str(info.value) == "history record lacks ['examples_per_sec', 'test_acc', 'train_acc']"
    for field in FIELDS:
        with pytest.raises(ValueError, match=rf"^history record lacks \['{field}'\]$"):
            history.append(**{k: v for k, v in RECORD.items() if k != field})
    assert len(history) == 0
    history.append(**RECORD, lr=0.1)  # more than the fields is fine
    assert history.epochs == [{**RECORD, 'lr': 0.1}] and len(history) == 1


def test_the_history_is_written_as_indented_json_and_read_back(tmp_path):
    history = History(meta={'lr': 0.1, 'options': {'seed': 3}})
    history.append(**RECORD)
    history.append(**{**RECORD, 'epoch': 2, 'test_acc': 0.75})
    path = tmp_path / 'history.json'
    history.save(str(path))
    assert path.read_text() == json.dumps({'meta': {'lr': 0.1, 'options': {'seed': 3}},
                                           'epochs': history.epochs}, indent=2) + '\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['history.json']
    loaded = History.load(str(path))
    assert loaded.to_dict() == history.to_dict()
    assert loaded.column('test_acc') == [0.5, 0.75] and loaded.column('epoch') == [1, 2]


def test_a_history_without_meta_loads_with_empty_meta(tmp_path):
    path = tmp_path / 'history.json'
    path.write_text(json.dumps({'epochs': [RECORD]}))
    loaded = History.load(str(path))
    assert loaded.meta == {} and loaded.epochs == [RECORD]


def test_a_history_copies_what_it_is_given():
    epochs, meta = [RECORD], {'lr': 0.1}
    history = History(epochs, meta)
    history.append(**RECORD)
    history.meta['seed'] = 1
    assert epochs == [RECORD] and meta == {'lr': 0.1}
    assert (History().epochs, History().meta) == ([], {})
