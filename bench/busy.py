"""How d2lnets' thread settings hold up on a busy machine: a chapter's
training, timed in fresh processes under each thread setting, on a quiet
machine and beside neighbours this command starts and ends itself.

    python -m bench.busy                                  # the issue's case, 3 repeats
    python -m bench.busy --neighbours spin --repeats 5
    python -m bench.busy --together 3 --json docs/bench/busy.json

Settings (each a fresh `python -m chapters.<chapter> ...` process; its
examples/s is the last epoch line's):

- `defaults`: no thread variable set, so d2lnets chooses (`d2lnets._threads`);
- `1 active`, `1 passive`: OMP_NUM_THREADS=1 with OMP_WAIT_POLICY=ACTIVE
  (GOMP_SPINCOUNT=300000) or PASSIVE;
- `2 active`: OMP_NUM_THREADS=2 OMP_WAIT_POLICY=ACTIVE GOMP_SPINCOUNT=300000
  (d2lnets' choice on every machine until session 13);
- `2 passive`: OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE.

Conditions: `quiet` (nothing started), and `busy`, beside `--neighbours`:

- `train` (default): `--neighbour-count` trainings of `chapters.vgg --quick`
  pinned to the `2 active` setting, as other programs that spin their
  threads are, whatever d2lnets chooses;
- `spin`: `--neighbour-count` Python loops `while True: pass`.

`--neighbour-nice N` starts the neighbours at that niceness (a batch job at
nice 19, say); d2lnets counts them as load like any other, since they cost
a spinning thread team as much (docs/results.md, "Niced neighbours").

Within each repeat every setting runs once per condition, in turn, so slow
spells hit them alike; the table gives the median examples/s over repeats
with min-max, and each setting's ratio to the best setting of that
condition and repeat. `--together N` also starts N trainings at the
defaults at once and compares their wall time with the same N trainings one
after another (the shared-server case: N notebooks on one machine).

Neighbours run in process groups of their own under `timeout -s KILL`
(`--neighbour-seconds`), so none outlives this command even if it is killed.
"""
import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench.timing import cpu_model, spread, usable_cores

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARIABLES = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')
SETTINGS = {
    'defaults': {},
    '1 active': {'OMP_NUM_THREADS': '1', 'OMP_WAIT_POLICY': 'ACTIVE',
                 'GOMP_SPINCOUNT': '300000'},
    '1 passive': {'OMP_NUM_THREADS': '1', 'OMP_WAIT_POLICY': 'PASSIVE'},
    '2 active': {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'ACTIVE',
                 'GOMP_SPINCOUNT': '300000'},
    '2 passive': {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'PASSIVE'},
}
NEIGHBOUR_TRAINING = ['-m', 'chapters.vgg', '--quick', '--epochs', '1000', '--no-pictures']
RATE = re.compile(r'^epoch \d+, .*, ([\d.]+) examples/sec$', re.M)
CHOICE = re.compile(r'^threads: .*$', re.M)


def clean_env(**extra):
    """This environment without the thread variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(extra)
    return env


def training_command(args, out):
    return [sys.executable, '-m', f'chapters.{args.chapter}', '--quick',
            '--num-train', str(args.num_train), '--num-test', str(args.num_test),
            '--epochs', str(args.epochs), '--no-pictures', '--out', out]


def run_training(args, settings, scratch):
    """Train once in a fresh process; (examples/s of the last epoch, wall
    seconds, d2lnets' one-line thread choice or None)."""
    out = tempfile.mkdtemp(dir=scratch)
    start = time.perf_counter()
    done = subprocess.run(training_command(args, out), cwd=args.tree, env=clean_env(**settings),
                          capture_output=True, text=True, timeout=args.trial_timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f'training failed ({done.returncode}): {done.stderr.strip()[-500:]}')
    rates = RATE.findall(done.stdout)
    choice = CHOICE.search(done.stdout)
    return float(rates[-1]), wall, choice.group(0) if choice else None


class Neighbours:
    """`count` bounded CPU-bound processes of `kind`, each in a session of its
    own, killed (whole group) on exit or after `seconds` at the latest."""

    def __init__(self, kind, count, seconds, scratch, nice=0):
        self.kind, self.count, self.seconds, self.scratch = kind, count, seconds, scratch
        self.nice = nice
        self.procs = []

    def __enter__(self):
        for _ in range(self.count):
            if self.kind == 'spin':
                body = [sys.executable, '-c', 'while True: pass']
                env = clean_env()
            else:
                out = tempfile.mkdtemp(dir=self.scratch)
                body = [sys.executable, *NEIGHBOUR_TRAINING, '--out', out]
                env = clean_env(**SETTINGS['2 active'])
            command = ['nice', '-n', str(self.nice), 'timeout', '-s', 'KILL',
                       str(int(self.seconds)), *body]
            self.procs.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env,
                                               stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL,
                                               start_new_session=True))
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        self.procs = []


def others_cpu(seconds=1.0):
    """Cores' worth of CPU time this machine used over `seconds` (/proc/stat),
    while this process sleeps: how busy the 'quiet' condition really was."""
    def sample():
        with open('/proc/stat') as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]
    (total0, idle0), start = sample(), time.perf_counter()
    time.sleep(seconds)
    total1, idle1 = sample()
    busy = (total1 - total0) - (idle1 - idle0)
    return busy / 100 / (time.perf_counter() - start)  # USER_HZ ticks


def rotated(names, repeat):
    k = repeat % len(names)
    return names[k:] + names[:k]


def measure(args, scratch, log):
    """{condition: {setting: [examples/s per repeat]}}, the defaults' one-line
    choices per condition, and the cores other programs used before each
    quiet block."""
    names = list(SETTINGS)
    rates = {c: {n: [] for n in names} for c in args.conditions}
    choices = {c: [] for c in rates}
    background = []

    def time_settings(condition, repeat):
        for name in rotated(names, repeat):
            rate, _, choice = run_training(args, SETTINGS[name], scratch)
            rates[condition][name].append(rate)
            if name == 'defaults':
                choices[condition].append(choice)
            log(f'repeat {repeat + 1} {condition} {name}: {rate:,.0f} examples/s')

    for repeat in range(args.repeats):
        if 'quiet' in args.conditions:
            background.append(others_cpu())
            time_settings('quiet', repeat)
        if 'busy' in args.conditions:
            with Neighbours(args.neighbours, args.neighbour_count, args.neighbour_seconds,
                            scratch, args.neighbour_nice):
                time.sleep(args.settle)
                time_settings('busy', repeat)
    return rates, choices, background


def together(args, scratch, log):
    """Wall seconds of N default trainings started together (`--stagger`
    seconds apart), from the first start to the last end, and of one alone
    (x N: one after another); repeated, interleaved; and what each chose
    (its start-up line and any change of thread count in mid-run)."""
    at_once, alone, chose = [], [], []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        procs = []
        for _ in range(args.together):
            procs.append(subprocess.Popen(training_command(args, tempfile.mkdtemp(dir=scratch)),
                                          cwd=args.tree, env=clean_env(), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
            time.sleep(args.stagger)
        outputs = [p.communicate(timeout=args.trial_timeout) for p in procs]
        chose.append([CHOICE.findall(out) for out, _ in outputs])
        at_once.append(time.perf_counter() - start)
        if any(p.returncode for p in procs):
            raise RuntimeError(f'a training failed: {outputs[0][1][-500:]}')
        _, wall, _ = run_training(args, {}, scratch)
        alone.append(wall)
        log(f'repeat {repeat + 1}: {args.together} at once {at_once[-1]:.1f} s, '
            f'one alone {wall:.1f} s (x{args.together} = {wall * args.together:.1f} s)')
    speedups = [a * args.together / t for a, t in zip(alone, at_once, strict=True)]
    return dict(trainings=args.together, stagger_s=args.stagger, at_once_s=spread(at_once),
                alone_s=spread(alone), one_after_another_over_at_once=spread(speedups),
                chose=chose)


def summarise(rates):
    """Per condition and setting: spread of examples/s, and of the ratio to
    the best setting's rate in the same repeat."""
    table = {}
    for condition, by_setting in rates.items():
        repeats = len(next(iter(by_setting.values())))
        best = [max(v[r] for v in by_setting.values()) for r in range(repeats)]
        table[condition] = {
            name: dict(examples_per_s=spread(values),
                       of_best=spread([v / b for v, b in zip(values, best, strict=True)]))
            for name, values in by_setting.items()}
    return table


def commit_of(tree):
    """The commit checked out in `tree` (None outside git)."""
    done = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=tree, capture_output=True, text=True)
    return done.stdout.strip() or None


def machine():
    return dict(cpu=cpu_model(), usable_cores=usable_cores(), python=platform.python_version())


def format_table(table):
    lines = ['| condition | setting | examples/s, median [min-max] | of the best setting |',
             '|---|---|---|---|']
    for condition, by_setting in table.items():
        for name, row in by_setting.items():
            r, b = row['examples_per_s'], row['of_best']
            lines.append(f'| {condition} | {name} | {r["median"]:,.0f} [{r["min"]:,.0f}-'
                         f'{r["max"]:,.0f}] | {b["median"]:.2f} [{b["min"]:.2f}-'
                         f'{b["max"]:.2f}] |')
    return '\n'.join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m bench.busy',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--chapter', default='vgg')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-test', type=int, default=500)
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--conditions', nargs='+', choices=('quiet', 'busy'),
                        default=['quiet', 'busy'])
    parser.add_argument('--neighbours', choices=('train', 'spin'), default='train')
    parser.add_argument('--neighbour-count', type=int, default=3)
    parser.add_argument('--neighbour-nice', type=int, default=0, metavar='N',
                        help='start the neighbours at this niceness (0-19)')
    parser.add_argument('--neighbour-seconds', type=float, default=1800,
                        help='no neighbour lives longer than this')
    parser.add_argument('--settle', type=float, default=15,
                        help='seconds the neighbours get to start training before timing')
    parser.add_argument('--trial-timeout', type=float, default=900)
    parser.add_argument('--together', type=int, default=0, metavar='N',
                        help='also time N default trainings at once against one after another')
    parser.add_argument('--stagger', type=float, default=0,
                        help='seconds between the starts of the --together trainings')
    parser.add_argument('--skip-settings', action='store_true',
                        help='only the --together comparison')
    parser.add_argument('--tree', default=REPO_ROOT,
                        help='run the timed trainings from this checkout (default: this one), '
                             'e.g. a git worktree of an earlier commit to compare with')
    parser.add_argument('--json', help='write the results here')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = dict(machine=machine(), command='python -m bench.busy ' + ' '.join(
        sys.argv[1:] if argv is None else argv), settings=SETTINGS,
        neighbours=dict(kind=args.neighbours, count=args.neighbour_count, nice=args.neighbour_nice,
                        command=' '.join(NEIGHBOUR_TRAINING) if args.neighbours == 'train'
                        else 'while True: pass'),
        tree=dict(path=args.tree, commit=commit_of(args.tree)), date=time.strftime('%Y-%m-%d'))

    def log(line):
        print(line, flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        if not args.skip_settings:
            rates, choices, background = measure(args, scratch, log)
            result.update(samples=rates, table=summarise(rates), defaults_chose=choices,
                          quiet_background_cores=background)
            print(format_table(result['table']))
            for condition, seen in choices.items():
                print(f'defaults, {condition}: {statistics.mode(seen) if seen else None}')
        if args.together:
            result['together'] = together(args, scratch, log)
            t = result['together']['one_after_another_over_at_once']
            print(f'{args.together} trainings at once: {t["median"]:.2f}x [{t["min"]:.2f}-'
                  f'{t["max"]:.2f}] the speed of one after another')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
            f.write('\n')


if __name__ == '__main__':
    main()
