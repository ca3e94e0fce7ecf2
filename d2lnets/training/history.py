"""The per-epoch record of a training run, saved and loaded as JSON."""
import json

from .._files import write_text

FIELDS = ('epoch', 'loss', 'train_acc', 'test_acc', 'time', 'examples_per_sec')


class History:
    """Per-epoch metrics (`FIELDS`) plus free-form run metadata."""

    def __init__(self, epochs=None, meta=None):
        self.epochs = list(epochs or [])
        self.meta = dict(meta or {})

    def append(self, **record):
        missing = set(FIELDS) - set(record)
        if missing:
            raise ValueError(f'history record lacks {sorted(missing)}')
        self.epochs.append(record)

    def __len__(self):
        return len(self.epochs)

    def column(self, field):
        return [record[field] for record in self.epochs]

    def to_dict(self):
        return {'meta': self.meta, 'epochs': self.epochs}

    def save(self, path):
        """Write JSON atomically, so an interrupted write never leaves half a file."""
        write_text(path, json.dumps(self.to_dict(), indent=2) + '\n')

    @classmethod
    def load(cls, path):
        with open(path) as f:
            data = json.load(f)
        return cls(data['epochs'], data.get('meta'))

