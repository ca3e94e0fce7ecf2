"""A/B test of an environment setting on d2lnets' training speed: fresh
processes with and without it, taking turns, each timing `bench.speed`'s
`d2lnets` contender (or `d2lnets-chapter`, the whole loop over real data);
the ratio B/A is taken turn by turn and reported as median [min-max].

    python -m bench.ab lenet MXNET_ENGINE_TYPE=NaiveEngine
    python -m bench.ab batchnorm MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_FWD=100 \\
        MXNET_EXEC_BULK_EXEC_MAX_NODE_TRAIN_BWD=100 --repeats 5

Settings are given as NAME=VALUE (B); A is the environment as it is. Each
process imports d2lnets first, so settings of d2lnets' own (OMP_*) given
here win over its defaults.
"""
import argparse
import json
import os
import subprocess
import sys

from bench.networks import NETWORKS
from bench.timing import paired_ratio, spread

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rate_in_fresh_process(network, contender, env, min_seconds):
    command = [sys.executable, '-m', 'bench.speed', '--child-rate', network, contender,
               '--min-seconds', str(min_seconds)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_ROOT,
                         env=env).stdout
    return json.loads(out.strip().splitlines()[-1])['images_per_s']


def parse_setting(text):
    name, sep, value = text.partition('=')
    if not sep or not name:
        raise argparse.ArgumentTypeError(f'{text!r} is not NAME=VALUE')
    return name, value


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.ab', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('network', choices=list(NETWORKS))
    parser.add_argument('settings', nargs='+', type=parse_setting, metavar='NAME=VALUE')
    parser.add_argument('--contender', choices=('d2lnets', 'd2lnets-chapter'),
                        default='d2lnets')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--min-seconds', type=float, default=10.0)
    args = parser.parse_args(argv)
    env_a = dict(os.environ)
    env_b = dict(env_a, **dict(args.settings))
    samples = {'A': [], 'B': []}
    for _ in range(args.repeats):
        for name, env in (('A', env_a), ('B', env_b)):
            samples[name].append(rate_in_fresh_process(args.network, args.contender, env,
                                                       args.min_seconds))
    label = ' '.join(f'{n}={v}' for n, v in args.settings)
    for name, values in samples.items():
        s = spread(values)
        print(f"{name} ({'as is' if name == 'A' else label}): {s['median']:,.1f} "
              f"[{s['min']:,.1f}-{s['max']:,.1f}] images/s")
    ratio = paired_ratio(samples['B'], samples['A'])
    print(f"B/A: {ratio['median']:.2f} [{ratio['min']:.2f}-{ratio['max']:.2f}]x "
          f"({args.network}, {args.contender}, {args.repeats} turns)")


if __name__ == '__main__':
    main()
