"""Store the chapter notebooks with the outputs of a real run at their default.

    .venv/bin/python scripts/run_notebooks.py                  # every chapter notebook
    .venv/bin/python scripts/run_notebooks.py 3-vgg 7-resnet   # some of them
    .venv/bin/python scripts/run_notebooks.py --table          # the README's table

Each notebook runs from top to bottom as a student's would (no
`D2LNETS_QUICK`: on a CPU its training cell trains the recipe's `notebook`
preset), in a fresh folder under `runs/stored-notebooks/` (git ignores
`runs/`), so that no earlier checkpoint is resumed and nothing lands in the
repository but the notebook. Then the notebook is written back in place with

- its outputs, every PNG re-encoded with a 256-colour palette (a third to a
  fifth of matplotlib's size, no visible change for plots and filters);
- `metadata.d2lnets_run`: the date, the machine, MXNet's version, the
  minutes the run took and the test accuracy after the training cell's last
  epoch (fine-tuning: both networks'); the README's notebook table states
  these, and a test compares;
- one line under the title saying the same, for the reader.

`tests/test_notebooks.py` runs a copy of each in its smoke setting and checks
that every cell not tagged `varies` prints what the stored one printed.
"""
import argparse
import base64
import datetime
import glob
import io
import os
import re
import sys
import time

import nbformat
from nbclient import NotebookClient
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.timing import cpu_model, usable_cores  # noqa: E402

RECORD_START = '*Stored outputs:'


def chapter_notebooks():
    """The chapter notebooks, by name ('1-lenet', ...), in the book's order."""
    paths = glob.glob(os.path.join(ROOT, 'notebooks', '[0-9]*-*.ipynb'))
    names = [os.path.basename(p)[:-len('.ipynb')] for p in paths]
    return sorted(names, key=lambda name: int(name.split('-', 1)[0]))


def kernel_environment():
    """What the kernel needs: this interpreter first on PATH, the repository
    importable, and no smoke switch."""
    env = {k: v for k, v in os.environ.items() if k != 'D2LNETS_QUICK'}
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env['PATH']
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


def smaller_png(data):
    """`data` (base64 PNG) with a 256-colour palette, if that is smaller."""
    raw = base64.b64decode(data)
    image = Image.open(io.BytesIO(raw))
    method = Image.Quantize.FASTOCTREE if image.mode == 'RGBA' else Image.Quantize.MEDIANCUT
    out = io.BytesIO()
    image.quantize(colors=256, method=method).save(out, format='PNG', optimize=True)
    if out.tell() >= len(raw):
        return data
    return base64.b64encode(out.getvalue()).decode('ascii')


def compress_images(nb):
    for cell in nb.cells:
        for output in cell.get('outputs', []):
            data = output.get('data', {})
            if 'image/png' in data:
                data['image/png'] = smaller_png(data['image/png'])


def final_accuracies(nb):
    """{'test_acc': the test accuracy the first training cell printed for its
    last epoch}; for fine-tuning, the fine-tuned network's and, as
    'scratch_acc', the one trained from scratch; {} if there is neither."""
    for cell in nb.cells:
        if cell.cell_type != 'code':
            continue
        text = ''.join(o.get('text', '') for o in cell.outputs if o.output_type == 'stream')
        transfer = re.search(r'fine-tuned (\d\.\d+), from scratch (\d\.\d+)', text)
        if transfer:
            return {'test_acc': float(transfer[1]), 'scratch_acc': float(transfer[2])}
        found = re.findall(r'^epoch \d+, .*test acc (\d\.\d+)', text, flags=re.MULTILINE)
        if 'train_ch5(' in cell.source and found:
            return {'test_acc': float(found[-1])}
    return {}


def record_line(run):
    return (f"{RECORD_START} a run on {run['cores']} cores of an {run['cpu']} (CPU only), "
            f"{run['date']}, {run['minutes']:.0f} min from top to bottom, made by "
            f"`python scripts/run_notebooks.py`. Your run's numbers will differ a little.*")


def write_record(nb, run):
    """The run in the metadata and as the title cell's last line."""
    import mxnet
    nb.metadata['d2lnets_run'] = dict(run, mxnet=mxnet.__version__)
    title = nb.cells[0]
    lines = [line for line in title.source.rstrip().split('\n')
             if not line.startswith(RECORD_START)]
    title.source = '\n'.join(lines).rstrip() + '\n\n' + record_line(run)


def run_notebook(name, workdir, log=print):
    path = os.path.join(ROOT, 'notebooks', f'{name}.ipynb')
    nb = nbformat.read(path, as_version=4)
    os.makedirs(workdir)
    start = time.perf_counter()
    saved, kernel_env = os.environ.copy(), kernel_environment()
    os.environ.clear()
    os.environ.update(kernel_env)
    try:
        NotebookClient(nb, timeout=None, kernel_name='python3',
                       resources={'metadata': {'path': workdir}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    minutes = (time.perf_counter() - start) / 60
    compress_images(nb)
    write_record(nb, dict(date=datetime.date.today().isoformat(), cpu=cpu_model(),
                          cores=usable_cores(), minutes=round(minutes, 1),
                          **final_accuracies(nb)))
    nbformat.write(nb, path)
    log(f'{name}: {minutes:.1f} min, {os.path.getsize(path) / 1e6:.2f} MB stored')


CHANGE_WORDS = {'ratio': 'channels/{}', 'fc_units': '{} FC units', 'version': 'version {}',
                'bypass': '{} bypasses', 'lr': 'lr {}', 'batch_size': 'batch {}',
                'resize': '{0}x{0}', 'num_train': '{:,} images', 'epochs': '{} epochs'}


def preset_words(chapter, preset='notebook'):
    """What `preset` trains, where it differs from the book: '32x32, batch 64, 4 epochs'."""
    from d2lnets.recipes import get_recipe
    recipe = get_recipe(chapter)
    book, settings = recipe.settings('book'), recipe.settings(preset)
    words = [CHANGE_WORDS[k].format(settings[k]) for k in CHANGE_WORDS
             if k in settings and settings[k] != book.get(k)]
    words = ['1 epoch' if word == '1 epochs' else word for word in words]
    if settings['num_train'] is None:
        words.append('all images')
    return ', '.join(words) or "the book's setting"


def chapter_of(name):
    """'6-batch-norm' -> 'batchnorm'."""
    return name.split('-', 1)[1].replace('-', '')


def markdown_table(names=None):
    """The stored notebooks' runs as the README's table."""
    from d2lnets.recipes import list_recipes
    rows = ['| notebook | on a CPU it trains | test acc | top to bottom | machine |',
            '|---|---|---|---|---|']
    for name in names or chapter_notebooks():
        nb = nbformat.read(os.path.join(ROOT, 'notebooks', f'{name}.ipynb'), as_version=4)
        run = nb.metadata.get('d2lnets_run')
        trains = (preset_words(chapter_of(name)) if chapter_of(name) in list_recipes()
                  else 'its own setting (see the notebook)')
        if run is None:
            rows.append(f'| `{name}` | {trains} | not run yet | - | - |')
            continue
        accuracy = '-' if run.get('test_acc') is None else f"{run['test_acc']:.3f}"
        if run.get('scratch_acc') is not None:
            accuracy += f" (from scratch: {run['scratch_acc']:.3f})"
        rows.append(f"| `{name}` | {trains} | {accuracy} | {run['minutes']:.0f} min | "
                    f"{run['cores']} cores of an {run['cpu']}, {run['date']} |")
    return '\n'.join(rows) + '\n'


def parse_args(argv=None):
    names = chapter_notebooks()
    parser = argparse.ArgumentParser(prog='python scripts/run_notebooks.py',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('names', nargs='*', metavar='NAME', help=f'default: all of '
                                                                  f'{", ".join(names)}')
    parser.add_argument('--table', action='store_true',
                        help="run nothing: print the README's table of the stored runs")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f'no notebook {", ".join(unknown)}; valid: {", ".join(names)}')
    args.names = args.names or names
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.table:
        print(markdown_table(args.names), end='')
        return
    names = args.names
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    top = os.path.join(ROOT, 'runs', 'stored-notebooks', stamp)
    for name in names:
        run_notebook(name, os.path.join(top, name))


if __name__ == '__main__':
    main()
