"""Run a chapter in this process with one fault injected (tests/test_faults_runs.py).

    python tests/fault_child.py FAULT CHAPTER [OPTIONS...]

FAULT is one of
    kill:STEP:N    SIGKILL this process right after the N-th call of STEP, a
                   function of d2lnets.training.checkpoint (_write_parameters,
                   _write_states, _write_history, _write_manifest, _retire, _install,
                   _drop_retired)
                   or 'step' (Trainer.step: in the middle of an epoch)
    enospc:STEP:N  the N-th call of STEP raises OSError(ENOSPC) instead
    nan:N          after the N-th Trainer.step the first parameter becomes NaN
    none           no fault
CHAPTER is a module of chapters/ (lenet, vgg, finetune, ...), run as
`python -m chapters.CHAPTER OPTIONS...` would run it.
"""
import d2lnets  # noqa: F401  (first: it sets MXNet's threads)
import errno
import importlib
import os
import signal
import sys

from mxnet import gluon

from d2lnets.cli import run_chapter_main
from d2lnets.training import checkpoint


def after_nth_call(owner, name, n, then):
    """Replace `owner.name` by a wrapper that runs `then(args)` at the n-th call;
    `then` returns True to skip the original call (a fault instead of it)."""
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n and then(args, before=True):
            return None
        result = original(*args, **kwargs)
        if calls[0] == n:
            then(args, before=False)
        return result
    setattr(owner, name, wrapper)


def kill(args, before):
    if not before:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return False


def enospc(args, before):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def poison(args, before):
    if not before:
        trainer = args[0]
        first = trainer._params[0]
        first.set_data(first.data() * float('nan'))
    return False


def inject(fault):
    kind, _, rest = fault.partition(':')
    if kind == 'none':
        return
    if kind == 'nan':
        after_nth_call(gluon.Trainer, 'step', int(rest), poison)
        return
    step, n = rest.rsplit(':', 1)
    owner, name = (gluon.Trainer, 'step') if step == 'step' else (checkpoint, step)
    after_nth_call(owner, name, int(n), {'kill': kill, 'enospc': enospc}[kind])


def main():
    fault, chapter, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    inject(fault)
    module = importlib.import_module(f'chapters.{chapter}')
    run_chapter_main(lambda: module.main(argv), f'python -m chapters.{chapter}')


if __name__ == '__main__':
    main()
