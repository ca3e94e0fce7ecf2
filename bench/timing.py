"""Timing that a busy machine cannot fool easily: every contender runs for at
least `min_seconds` (and `min_steps` steps) a repeat, the contenders take
turns within each repeat, and what is reported is the median over repeats
with its min-max spread; ratios between two contenders are taken repeat by
repeat (the two ran back to back, under the same load) and summarised the
same way.
"""
import math
import os
import platform
import statistics
import time


def cpu_model():
    """The CPU's model name as /proc/cpuinfo gives it (else what `platform` knows)."""
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f
                        if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def usable_cores():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def time_steps(run, batch_size, min_seconds, min_steps):
    """Call `run(k)` (k steps, waiting for them to finish): `min_steps` first,
    then as many more as the rate so far says will fill `min_seconds`, until
    they are filled; return (images, seconds). Few waits, so that a network
    whose loop keeps the engine busy ahead of Python keeps doing so."""
    steps, start = 0, time.perf_counter()
    chunk = min_steps
    while True:
        run(chunk)
        steps += chunk
        seconds = time.perf_counter() - start
        if seconds >= min_seconds:
            return steps * batch_size, seconds
        chunk = max(1, math.ceil((min_seconds - seconds) * steps / seconds))


class TimedBatches:
    """Batches from `loader`, epoch after epoch, until at least `min_seconds`
    have passed and `min_steps` batches were given; then `sync()` (waits for
    all queued work) and the time from the first request to then is kept in
    `seconds`, the examples given in `images`. For timing a whole training
    loop, data loading included, without changing the loop."""

    def __init__(self, loader, min_seconds, min_steps, sync):
        self.loader, self.sync = loader, sync
        self.min_seconds, self.min_steps = min_seconds, min_steps
        self.images, self.seconds = 0, None

    def __iter__(self):
        steps, start = 0, time.perf_counter()
        while True:
            for X, y in self.loader:
                yield X, y
                steps += 1
                self.images += y.shape[0]
                if steps >= self.min_steps and time.perf_counter() - start >= self.min_seconds:
                    self.sync()
                    self.seconds = time.perf_counter() - start
                    return


def interleaved(runners, repeats):
    """Run each of `runners` (name -> callable giving (images, seconds)) once
    per repeat, in turn; return name -> list of images/s, one per repeat."""
    samples = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            images, seconds = run()
            samples[name].append(images / seconds)
    return samples


def spread(values):
    """{'median', 'min', 'max'} of `values`."""
    return dict(median=statistics.median(values), min=min(values), max=max(values))


def paired_ratio(numerator, denominator):
    """spread() of the repeat-by-repeat ratios of two contenders' samples."""
    return spread([a / b for a, b in zip(numerator, denominator, strict=True)])
