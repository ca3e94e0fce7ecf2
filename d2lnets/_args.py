"""Command-line arguments that are refused in one line: a parser whose errors
are `prog: error: message (see --help)` with exit code 2, and the value types
the programs share (each says what it wants when a value does not fit)."""
import argparse
import math

MAX_SEED = 2 ** 32 - 1  # NumPy's and MXNet's seeds are 32-bit


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: `prog: error: message`."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def whole_number(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a whole number') from None


def positive_int(text):
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'{value} is not positive')
    return value


def non_negative_int(text):
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'{value} is negative; give 0 or more')
    return value


def int_up_to(limit, why):
    """A type for whole numbers in 1..`limit`; `why` says where the limit comes from."""
    def bounded(text):
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f'{value} is above {limit}, {why}')
        return value
    bounded.__name__ = f'int_up_to_{limit}'
    return bounded


def random_seed(text):
    """A random seed: a whole number in 0..2**32-1."""
    value = whole_number(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f'{value} is not in 0..{MAX_SEED}')
    return value


def positive_float(text):
    """A finite number above zero (refuses nan, inf and 1e400)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'{value} is not a finite number')
    if value <= 0:
        raise argparse.ArgumentTypeError(f'{value} is not positive')
    return value


MAX_LOADER_WORKERS = 64


def loader_workers(text):
    """Data loader processes: 0 (load in the main process) to MAX_LOADER_WORKERS."""
    value = non_negative_int(text)
    if value > MAX_LOADER_WORKERS:
        raise argparse.ArgumentTypeError(f'{value} is above {MAX_LOADER_WORKERS}; one or two '
                                         f'per core are enough')
    return value
