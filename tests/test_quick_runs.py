"""Every chapter's `--quick` run learns on real Fashion-MNIST: its last test
accuracy is well above chance (0.1). Slow (minutes each; `-m slow`). The
thresholds sit below the accuracies measured in session 13 (docs/results.md,
"Quick runs"), with room for another CPU's rounding; LeNet's and
SqueezeNet's 0.7 is the issue's bar. The `--notebook` runs (what the
notebooks train on a CPU) reach 0.85 where the book reaches 0.88 or more
(the issue's bar), and learn clearly elsewhere (below the accuracies their
stored notebooks show, README "Notebooks")."""
import json
import os
import subprocess
import sys

import pytest

from d2lnets.data.fashion_mnist import search_dirs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# chapter -> least test accuracy after its quick run (measured in session 13)
LEAST = {
    'lenet': 0.70,       # 0.825
    'alexnet': 0.60,     # 0.734 (2 threads), 0.744 (1)
    'vgg': 0.80,         # 0.873
    'nin': 0.55,         # 0.653
    'googlenet': 0.60,   # 0.779
    'batchnorm': 0.70,   # 0.806
    'resnet': 0.70,      # 0.831
    'densenet': 0.70,    # 0.804
    'squeezenet': 0.70,  # 0.819 (session 15, lr 0.01)
}


# chapter -> least test accuracy after its --notebook run
NOTEBOOK_LEAST = {
    'lenet': 0.70, 'alexnet': 0.60, 'vgg': 0.85, 'nin': 0.60, 'googlenet': 0.85,
    'batchnorm': 0.75, 'resnet': 0.85, 'densenet': 0.80, 'squeezenet': 0.70,
}


def have_fashion_mnist():
    return any(os.path.isfile(os.path.join(d, 'train-images-idx3-ubyte.gz'))
               for d in search_dirs(None))


@pytest.mark.slow
@pytest.mark.skipif(not have_fashion_mnist(), reason='Fashion-MNIST not found')
@pytest.mark.parametrize('preset, chapter', [('quick', c) for c in sorted(LEAST)] +
                         [('notebook', c) for c in sorted(NOTEBOOK_LEAST)])
def test_the_run_learns(preset, chapter, tmp_path):
    done = subprocess.run([sys.executable, '-m', f'chapters.{chapter}', f'--{preset}',
                           '--ctx', 'cpu', '--no-pictures', '--out', str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr
    history = json.load(open(tmp_path / 'history.json'))
    least = (LEAST if preset == 'quick' else NOTEBOOK_LEAST)[chapter]
    assert history['epochs'][-1]['test_acc'] >= least
