"""Where a training step's time goes: MXNet's profiler over d2lnets' step
(as `bench.speed`'s `d2lnets` contender runs it) on one network.

    python -m bench.profile lenet                 # 50 profiled steps
    python -m bench.profile vgg --steps 5 --top 15

It prints the wall time a step takes without the profiler, the operators'
aggregate table (MXNet's `profiler.dumps()`: calls, total and mean time per
operator, sorted by total) and how much of the step's wall time the
operators account for; the rest is Python, Gluon and the engine's own work
between operators.
"""
import argparse
import json
import os
import tempfile
import time

import d2lnets  # noqa: F401  (sets the thread count before MXNet loads)
import mxnet as mx

from bench.networks import NETWORKS
from bench.speed import fixed_batch, gluon_net, mxnet_stepper


def step_seconds(run, steps):
    start = time.perf_counter()
    run(steps)
    return (time.perf_counter() - start) / steps


def operator_table(run, steps):
    """MXNet's aggregate statistics of `steps` steps, as JSON."""
    with tempfile.TemporaryDirectory() as directory:
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.path.join(directory, 'profile.json'))
        mx.profiler.set_state('run')
        run(steps)
        mx.profiler.set_state('stop')
        return json.loads(mx.profiler.dumps(reset=True, format='json'))


def operator_rows(stats):
    """(name, calls, total ms) of every operator the engine ran, largest first."""
    rows = [(name, entry['Count'], entry['Total'])
            for name, entry in stats.get('Time', {}).get('operator', {}).items()]
    return sorted(rows, key=lambda row: -row[2])


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.profile', description=__doc__.split(
        '\n\n')[0])
    parser.add_argument('network', choices=list(NETWORKS))
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--top', type=int, default=20, help='operators shown')
    parser.add_argument('--imperative', action='store_true', help='do not hybridize')
    args = parser.parse_args(argv)
    builder, side, batch_size, _ = NETWORKS[args.network]
    X, y = fixed_batch(side, batch_size)
    net = gluon_net(builder, X, hybridize=not args.imperative)
    run = mxnet_stepper(net, X, y, batch_size, sync_every_batch=False)
    run(3)
    wall = step_seconds(run, args.steps)
    rows = operator_rows(operator_table(run, args.steps))
    total = sum(row[2] for row in rows) / args.steps
    print(f'{args.network}, batch {batch_size}: {1000 * wall:.2f} ms a step '
          f'({batch_size / wall:,.0f} images/s) without the profiler; operators '
          f'{total:.2f} ms a step ({100 * total / (1000 * wall):.0f}% of the wall time)')
    print(f"{'operator':<40} {'calls/step':>10} {'ms/step':>8} {'share':>6}")
    for name, calls, ms in rows[:args.top]:
        print(f'{name:<40} {calls / args.steps:>10.1f} {ms / args.steps:>8.3f} '
              f'{100 * ms / args.steps / total:>5.1f}%')


if __name__ == '__main__':
    main()
