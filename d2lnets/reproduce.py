"""Reproduce the book's results: run each chapter at the book's setting, one
after another, resuming wherever an earlier invocation stopped, and write a
table of accuracy, time to the book's accuracy and peak memory.

    python -m d2lnets.reproduce                      # every chapter, book settings
    python -m d2lnets.reproduce --chapters vgg nin   # some of them
    python -m d2lnets.reproduce --chapters lenet -- --epochs 2   # options for each chapter

Each chapter runs as `python -m chapters.<name> --out OUT/<name>` (with
`--resume` when OUT/<name> holds its checkpoint), in a process of its own so
that its peak resident memory can be measured (`os.wait4`). What one
invocation measured is appended to OUT/<name>/reproduce.json, so the table
sums the wall time and the CPU time of every invocation and keeps the
largest peak; an invocation stopped by Ctrl-C or SIGTERM is recorded too
(its chapter's finished epochs are in the checkpoint). On a machine that
other work shares (or with the run paused), wall time grows while CPU time
(user and system, all threads) stays about what the run needs. Training
time to the book's accuracy is the sum of the epochs' times (training and
evaluation) up to the first epoch whose test accuracy reaches the book's; it
leaves out start-up and data loading, which the wall time includes.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

from ._files import write_text
from .recipes import get_recipe, list_recipes
from .training.checkpoint import Checkpoint
from .training.history import History

RECORD = 'reproduce.json'
MEMORY_LIMIT_MIB = 8 * 1024
GRACE_SECONDS = 30
COLUMNS = ('chapter', 'setting', 'epochs', 'test acc', 'book (GPU)', 'book acc reached',
           'wall time', 'CPU time', 'peak memory')


class Terminated(KeyboardInterrupt):
    """This process got SIGTERM (`main` raises it from the signal handler)."""


def run_chapter(chapter, out, extra_args=(), python=sys.executable):
    """Run (or resume) one chapter in a child process; record and return its
    wall time, peak resident memory and exit status."""
    directory = os.path.join(out, chapter)
    resume = Checkpoint(os.path.join(directory, 'checkpoint')).exists()
    command = [python, '-m', f'chapters.{chapter}', '--out', directory, *extra_args]
    if resume:
        command.append('--resume')
    start = time.time()
    process = subprocess.Popen(command)
    try:
        _, status, usage = os.wait4(process.pid, 0)
        stop = None
    except KeyboardInterrupt as stopped:
        stop = stopped
        status, usage = _stop_child(process.pid, forward=isinstance(stop, Terminated))
    process.returncode = os.waitstatus_to_exitcode(status)
    session = {'command': command, 'resumed': resume, 'exit_code': process.returncode,
               'interrupted': stop is not None,
               'wall_s': round(time.time() - start, 1),
               'cpu_s': round(usage.ru_utime + usage.ru_stime, 1),
               'peak_rss_mib': round(usage.ru_maxrss / 1024, 1)}  # ru_maxrss is in KiB
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)   # a stop now comes after the record
    try:
        record = load_record(directory)
        record['sessions'].append(session)
        os.makedirs(directory, exist_ok=True)
        write_text(os.path.join(directory, RECORD), json.dumps(record, indent=2) + '\n')
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    if stop is not None:
        raise stop
    return session


def _stop_child(pid, forward):
    """Wait for the interrupted chapter's process to end; (wait status, usage).

    A terminal's Ctrl-C reaches the chapter too, and it ends by itself; it gets
    GRACE_SECONDS to do so. SIGTERM sent to this process alone is `forward`ed
    at once, and so is a second Ctrl-C or SIGTERM during the grace: the user
    wants it over, and the invocation is still recorded. Either way the
    chapter's finished epochs are in its checkpoint.
    """
    deadline = time.monotonic() + (0 if forward else GRACE_SECONDS)
    while True:
        try:
            if time.monotonic() >= deadline:
                os.kill(pid, signal.SIGTERM)
                _, status, usage = os.wait4(pid, 0)
                return status, usage
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                return status, usage
            time.sleep(0.1)
        except KeyboardInterrupt:
            deadline = 0


def load_record(directory):
    path = os.path.join(directory, RECORD)
    if not os.path.isfile(path):
        return {'sessions': []}
    with open(path) as f:
        return json.load(f)


def load_history(directory):
    """The chapter's history so far (its checkpoint's), or None."""
    checkpoint = Checkpoint(os.path.join(directory, 'checkpoint'))
    if not checkpoint.exists():
        return None
    return History.load(checkpoint.path('history.json'))


def time_to_accuracy(history, target):
    """(epoch, seconds of training and evaluation) of the first epoch whose test
    accuracy reaches `target`, or None."""
    elapsed = 0.0
    for record in history.epochs:
        elapsed += record['time']
        if record['test_acc'] >= target:
            return record['epoch'], elapsed
    return None


def table_row(chapter, out):
    """One row of the table for `chapter` from what OUT/<chapter> holds."""
    recipe = get_recipe(chapter)
    directory = os.path.join(out, chapter)
    history, record = load_history(directory), load_record(directory)
    sessions = record['sessions']
    meta = history.meta if history else {}
    epochs_planned = meta.get('num_epochs', recipe.book['epochs'])
    setting = (f"{meta.get('resize') or recipe.book['resize'] or 28}px, "
               f"batch {meta.get('batch_size', recipe.book['batch_size'])}, "
               f"lr {meta.get('lr', recipe.book['lr'])}")
    done = len(history) if history else 0
    test_acc = f'{history.epochs[-1]["test_acc"]:.3f}' if done else '-'
    book_acc = recipe.book_test_acc
    reached = time_to_accuracy(history, book_acc) if done and book_acc else None
    reached_text = (f'epoch {reached[0]}, {_duration(reached[1])}' if reached
                    else '-' if book_acc is None
                    else ('not reached' if done >= epochs_planned else 'not yet'))
    peak = max((s['peak_rss_mib'] for s in sessions), default=None)
    peak_text = '-' if peak is None else f'{peak / 1024:.1f} GiB'
    if peak is not None and peak > MEMORY_LIMIT_MIB:
        peak_text += ' (over 8 GiB)'
    return (f'{recipe.title} (`{chapter}`)', setting, f'{done} of {epochs_planned}', test_acc,
            '-' if book_acc is None else f'{book_acc:.3f}', reached_text,
            _duration(sum(s['wall_s'] for s in sessions)) if sessions else '-',
            _duration(sum(s['cpu_s'] for s in sessions))
            if sessions and all('cpu_s' in s for s in sessions) else '-',  # older records lack it
            peak_text)


def markdown_table(chapters, out):
    rows = [COLUMNS, tuple('---' for _ in COLUMNS)]
    rows += [table_row(chapter, out) for chapter in chapters]
    return '\n'.join('| ' + ' | '.join(row) + ' |' for row in rows) + '\n'


def _duration(seconds):
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f'{hours} h {minutes:02d} min'
    return f'{minutes} min {secs:02d} s' if minutes else f'{secs} s'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m d2lnets.reproduce', description=__doc__.split('\n\n')[0],
        epilog='Options after -- go to every chapter (e.g. -- --ctx cpu).')
    parser.add_argument('--chapters', nargs='+', choices=list_recipes(), default=list_recipes(),
                        metavar='CHAPTER', help=f'which (default: all: {", ".join(list_recipes())})')
    parser.add_argument('--out', default=os.path.join('runs', 'reproduce'),
                        help='one folder per chapter in here (default: %(default)s)')
    parser.add_argument('--table', help='also write the markdown table to this file')
    parser.add_argument('--table-only', action='store_true',
                        help='train nothing: print the table of what OUT holds')
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index('--') + 1:] if '--' in argv else []
    args = parser.parse_args(argv[:argv.index('--')] if '--' in argv else argv)
    args.extra = extra
    return args


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    failed = []
    for chapter in [] if args.table_only else args.chapters:
        print(f'reproduce: {chapter}', flush=True)
        try:
            session = run_chapter(chapter, args.out, args.extra)
        except KeyboardInterrupt as stop:
            terminated = isinstance(stop, Terminated)
            print(f'reproduce: {"terminated" if terminated else "interrupted"}; '
                  f'run the same command again to resume', file=sys.stderr)
            sys.exit(128 + (signal.SIGTERM if terminated else signal.SIGINT))
        if session['exit_code'] != 0:
            failed.append(chapter)
    table = markdown_table(args.chapters, args.out)
    print(table, end='')
    if args.table:
        write_text(args.table, table)
    if failed:
        print(f'reproduce: error: {", ".join(failed)} did not finish (see above); run the same '
              f'command again to resume', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
