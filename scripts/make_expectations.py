"""Write the stored outputs that tests/test_model_outputs.py compares every
registered model with: tests/expectations/<model>.npy, the float32 output of
the seeded network (tests/seeded_models.py) on the seeded input.

Run it only on purpose, when a model's output is meant to change (and say so
in the commit), from the repository root:

    PYTHONPATH=$PWD python scripts/make_expectations.py            # every model
    PYTHONPATH=$PWD python scripts/make_expectations.py resnet50   # some

It checks that two runs give the same output before writing.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests'))

import numpy as np  # noqa: E402

import seeded_models  # noqa: E402
from d2lnets.models import list_models  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('names', nargs='*', help='models (default: all registered)')
    names = parser.parse_args(argv).names or list_models()
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        parser.error(f'unknown model(s) {", ".join(unknown)}')
    os.makedirs(seeded_models.EXPECTATIONS, exist_ok=True)
    for name in names:
        first, _ = seeded_models.model_output(name)
        again, _ = seeded_models.model_output(name)
        if not np.array_equal(first, again):
            sys.exit(f'{name}: two runs differ; nothing written for it')
        np.save(seeded_models.expectation_path(name), first)
        print(f'{name:30} {first.shape} max |y| {np.abs(first).max():.3g}', flush=True)


if __name__ == '__main__':
    main()
