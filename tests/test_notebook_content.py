"""Every chapter notebook is a lesson a student can learn the chapter from (issue 11, item 1):
at least 600 words of prose, formulas in LaTeX, the library's block shown from its source,
the per-layer shape table, checkpointed training with live curves, a plain statement of how
long the book's setting takes on 2 cores and on a GPU, the pictures, and 4-6 exercises with
code cells to start from. It trains, by default, the book's setting on a GPU and the recipe's
`notebook` preset on a CPU, chosen in one visible place (issue 28, item 2).

Each check is a function of the notebook that returns what is missing (or None); the last
test breaks a good notebook in each check's way and sees that check, and only it, fail.
"""
import copy
import functools
import glob
import os
import re

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAPTER_NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, 'notebooks', '[0-9]*.ipynb')))
PICTURE_CALLS = ('plot_architecture', 'plot_filters', 'plot_feature_maps', 'confusion_matrix',
                 'plot_confusion_matrix', 'worst_misclassified', 'plot_misclassified')
MIN_WORDS = 600
EXERCISES = range(4, 7)
HEADING = re.compile(r'^#+\s*Exercises\s*$', re.MULTILINE)
NUMBERED = re.compile(r'^ {0,3}(\d+)\.\s|^#+\s*Exercise\s+(\d+)', re.MULTILINE)


@functools.lru_cache(maxsize=None)
def read(path):
    return nbformat.read(path, as_version=4)


def sources(nb, kind):
    return [cell.source for cell in nb.cells if cell.cell_type == kind]


def prose(markdown):
    """Markdown without code, formulas or link targets: the words a student reads."""
    for pattern in (r'```.*?```', r'`[^`]*`', r'\$\$.*?\$\$', r'\$[^$]*\$', r'\]\([^)]*\)'):
        markdown = re.sub(pattern, ' ', markdown, flags=re.DOTALL)
    return markdown


def word_count(nb):
    return len(re.findall(r"[A-Za-z]+(?:['-][A-Za-z]+)*", prose('\n'.join(sources(nb, 'markdown')))))


def check_prose(nb):
    words = word_count(nb)
    if words < MIN_WORDS:
        return f'{words} words of prose, fewer than {MIN_WORDS}'


def check_latex(nb):
    text = '\n'.join(sources(nb, 'markdown'))
    if not any(re.search(r'\\[A-Za-z]+', f) for f in re.findall(r'\$\$(.+?)\$\$', text, re.DOTALL)):
        return 'no displayed LaTeX formula ($$...$$ with a command such as \\frac)'


def check_cites_the_book(nb):
    text = '\n'.join(sources(nb, 'markdown'))
    if not re.search(r'section \d+\.\d+', text) or 'first MXNet edition' not in text:
        return "no citation of the book's sections (current edition and first MXNet edition)"


def check_exercises(nb):
    cells = nb.cells
    start = next((i for i, c in enumerate(cells)
                  if c.cell_type == 'markdown' and HEADING.search(c.source)), None)
    if start is None:
        return 'no "Exercises" heading'
    after = cells[start:]
    text = '\n'.join(c.source[HEADING.search(c.source).end():] if i == 0 else c.source
                     for i, c in enumerate(after) if c.cell_type == 'markdown')
    numbers = [int(a or b) for a, b in NUMBERED.findall(text)]
    if numbers != list(range(1, len(numbers) + 1)) or len(numbers) not in EXERCISES:
        return f'exercises numbered {numbers}, not 1..n with n in 4-6'
    if sum(c.cell_type == 'code' and c.source.strip() != '' for c in after) < 2:
        return 'fewer than two code cells to start the exercises from'


def check_shows_library_source(nb):
    code = '\n'.join(sources(nb, 'code'))
    shown = set(re.findall(r'inspect\.getsource\((\w+)\)', code))
    imports = re.findall(r'^from (?:d2lnets|chapters)[\w.]* import (?:\(([^)]*)\)|([\w ,]+)$)',
                         code, re.MULTILINE)
    imported = {name.strip() for group in imports for name in ''.join(group).split(',')}
    if not shown & imported:
        return 'no inspect.getsource of a block imported from d2lnets or chapters'


def check_shape_table(nb):
    if not any('print_layer_shapes(' in s for s in sources(nb, 'code')):
        return 'no per-layer shape table (print_layer_shapes)'


def check_training(nb):
    code = '\n'.join(sources(nb, 'code'))
    missing = [s for s in ('train_ch5(', 'on_epoch=LivePlot(', 'Checkpoint(',
                           'resume=checkpoint.exists()') if s not in code]
    if missing:
        return f'training lacks {", ".join(missing)}'
    if not re.search(r'resum', '\n'.join(sources(nb, 'markdown'))):
        return 'no markdown telling the student that re-running resumes'


def check_time_statement(nb):
    if not any('2-core' in s and 'GPU' in s for s in sources(nb, 'markdown')):
        return "no markdown cell on the book's setting's time on a 2-core CPU and on a GPU"
    if not any('quick' in s.lower() and 'accuracy' in s for s in sources(nb, 'markdown')):
        return "no markdown cell on what the quick setting's accuracy means"


PRESET_LINE = "PRESET = 'book' if ctx.device_type == 'gpu' else 'notebook'"
RUN_FOLDER = re.compile(r"os\.path\.join\('runs', f'notebook-[\w-]+-\{PRESET\}'\)")


def check_default_setting(nb):
    code = sources(nb, 'code')
    choosing = [s for s in code if re.search(r'\bPRESET = ', s)]
    if len(choosing) != 1 or not all(part in choosing[0] for part in (
            PRESET_LINE, "if QUICK:", "PRESET = 'smoke'", 'settings = recipe.settings(PRESET)')):
        return ("the training setting is not chosen in one cell (PRESET: 'book' on a GPU, "
                "'notebook' on a CPU, 'smoke' under QUICK; settings = recipe.settings(PRESET))")
    text = '\n'.join(code)
    if len(re.findall(r'^settings = ', text, re.MULTILINE)) != 1:
        return 'settings are made in more than one place'
    if 'net = recipe.build_net(settings)' not in text:
        return 'the trained network is not the one the settings ask for (recipe.build_net)'
    if not RUN_FOLDER.search(text):
        return "the run's folder does not name the preset (runs/notebook-<chapter>-{PRESET})"
    markdown = '\n'.join(sources(nb, 'markdown'))
    if '`notebook`' not in markdown or "`PRESET = 'book'`" not in markdown:
        return ("no markdown on the `notebook` preset trained on a CPU and the switch to the "
                "book's setting (`PRESET = 'book'`)")


# A code cell whose output can differ between a smoke run (D2LNETS_QUICK=1) and a real
# default run carries the cell tag "varies"; every other code cell prints the same in both,
# so that stored outputs of a real run can be compared with a smoke run's. What varies: the
# device (try_gpu), the preset and its settings, the data (the iterators, their subsets and
# sizes), training and its history, timings, the network after training (any cell after
# the training cell that uses `net`), and the pictures of a network's weights (plot_filters:
# random before training, trained after).
VARIES = 'varies'
VARYING = re.compile(r'\b(?:try_gpu|PRESET|settings|load_data_fashion_mnist|train_iter|test_iter|'
                     r'train_ch5|history|time|perf_counter|plot_filters)\b')


def varying_cells(nb):
    """(index, why) of each code cell that by the rule above must carry the tag."""
    found, trained = [], False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != 'code':
            continue
        why = VARYING.search(cell.source) or (trained and re.search(r'\bnet\b', cell.source))
        if why:
            found.append((i, why.group(0)))
        trained = trained or 'train_ch5(' in cell.source
    return found


def check_varies_tags(nb):
    untagged = [f'{i} ({why})' for i, why in varying_cells(nb)
                if VARIES not in nb.cells[i].metadata.get('tags', [])]
    if untagged:
        return (f'code cells {", ".join(untagged)} can print differently in a smoke run and a '
                f'default run but lack the cell tag "{VARIES}"')


def check_pictures(nb):
    code = '\n'.join(sources(nb, 'code'))
    missing = [f for f in PICTURE_CALLS if not re.search(rf'(?<![\w.]){f}\(', code)]
    if missing:
        return f'no call of {", ".join(missing)}'


CHECKS = (check_prose, check_latex, check_cites_the_book, check_exercises,
          check_shows_library_source, check_shape_table, check_training, check_time_statement,
          check_default_setting, check_varies_tags, check_pictures)


# Checks of a notebook that trains a chapter's recipe (fine-tuning has none: notebook 10 is
# not among them).
RECIPE_CHECKS = (check_default_setting, check_varies_tags)
RECIPE_NOTEBOOKS = [p for p in CHAPTER_NOTEBOOKS if not os.path.basename(p).startswith('10-')]


@pytest.mark.parametrize('check', CHECKS, ids=lambda c: c.__name__[len('check_'):])
@pytest.mark.parametrize('path', CHAPTER_NOTEBOOKS, ids=os.path.basename)
def test_chapter_notebook_is_a_lesson(path, check):
    if check in RECIPE_CHECKS and path not in RECIPE_NOTEBOOKS:
        pytest.skip('no recipe: fine-tuning trains its own setting')
    assert check(read(path)) is None, os.path.basename(path)


def _replace(nb, old, new):
    for cell in nb.cells:
        cell.source = cell.source.replace(old, new)


def _drop_cells(nb, keep):
    nb.cells = [c for c in nb.cells if keep(c)]


def _cut_prose(nb):
    """Keep only the markdown lines the other checks look for."""
    wanted = re.compile(r'\$\$|first MXNet edition|section \d|Exercises|^ {0,3}\d+\.\s|2-core|GPU|'
                        r'quick|QUICK|accuracy|resum|`notebook`|PRESET')
    for cell in nb.cells:
        if cell.cell_type == 'markdown':
            cell.source = '\n'.join(line for line in cell.source.splitlines() if wanted.search(line))


def _untag_training(nb):
    for cell in nb.cells:
        if 'train_ch5(' in cell.source:
            cell.metadata.pop('tags', None)


def _seventh_exercise(nb):
    for cell in nb.cells:
        if cell.cell_type == 'markdown' and HEADING.search(cell.source):
            cell.source += '\n6. One more.\n7. And another.'


BREAKAGES = {
    check_prose: _cut_prose,
    check_latex: lambda nb: _replace(nb, '$$', '$'),
    check_cites_the_book: lambda nb: _replace(nb, 'first MXNet edition', 'first edition'),
    check_exercises: _seventh_exercise,
    check_shows_library_source: lambda nb: _replace(nb, 'inspect.getsource(', 'repr('),
    check_shape_table: lambda nb: _replace(nb, 'print_layer_shapes(', 'layer_table('),
    check_training: lambda nb: _replace(nb, 'resume=checkpoint.exists()', 'resume=False'),
    check_time_statement: lambda nb: _replace(nb, '2-core', 'two-core'),
    check_default_setting: lambda nb: _replace(nb, PRESET_LINE, "PRESET = 'book'"),
    check_varies_tags: _untag_training,
    check_pictures: lambda nb: _drop_cells(nb, lambda c: 'confusion_matrix(net' not in c.source),
}


@pytest.mark.parametrize('check', CHECKS, ids=lambda c: c.__name__[len('check_'):])
def test_each_check_catches_its_own_breakage(check):
    broken = copy.deepcopy(read(os.path.join(ROOT, 'notebooks', '1-lenet.ipynb')))
    BREAKAGES[check](broken)
    assert check(broken) is not None
    assert [c.__name__ for c in CHECKS if c is not check and c(broken) is not None] == []


SMOKE_SENTENCE = re.compile(r'(\d[\d,]*)\s+images(?:\s+at\s+(\d+)x\d+)?(?:[^.]*?tests\s+on\s+'
                            r'(\d[\d,]*))?', re.DOTALL)


@pytest.mark.parametrize('path', RECIPE_NOTEBOOKS, ids=os.path.basename)
def test_what_a_notebook_says_of_its_quick_run_is_its_recipes_smoke_preset(path):
    """"With D2LNETS_QUICK=1 it trains on N images at RxR and tests on M": the
    numbers are the ones the notebook runs (d2lnets.recipes' smoke preset)."""
    from d2lnets.recipes import get_recipe
    chapter = os.path.basename(path)[:-len('.ipynb')].split('-', 1)[1].replace('-', '')
    smoke = get_recipe(chapter).settings('smoke')
    text = '\n'.join(sources(read(path), 'markdown'))
    after = text[text.index('D2LNETS_QUICK=1'):]
    images, side, tested = SMOKE_SENTENCE.search(after[:400]).groups()
    assert int(images.replace(',', '')) == smoke['num_train']
    if side is not None:
        assert int(side) == (smoke['resize'] or 28)
    if tested is not None:
        assert int(tested.replace(',', '')) == smoke['num_test']
