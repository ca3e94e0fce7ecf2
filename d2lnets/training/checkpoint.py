"""Save a run after every epoch and take it up again where it stopped.

A checkpoint directory holds the parameters (`model.params`), the optimizer's
state (`trainer.states`), the history so far (`history.json`), the parameters
of the best epoch so far by test accuracy (`best.params`, a hard link to
`model.params` when that is the best) and a `manifest.json` naming the epoch,
the best epoch and its accuracy, and each file's size and SHA-256. An epoch is
saved as one unit: its files and manifest are written (and synced) into a
hidden folder beside the directory, `.NAME.saving-*`; the old directory is
renamed to `.NAME.old`, the new folder to NAME, and `.NAME.old` is removed. A
kill at any instant therefore leaves either the old epoch or the new one,
complete: when NAME is missing, the newest complete `.NAME.saving-*` or else
`.NAME.old` holds the run, and the next save or resume puts it back in place.
A file that no longer matches the manifest (truncated, overwritten) is
refused as damaged instead of being loaded.

A fresh run never overwrites an earlier one: `keep_earlier` moves it into
`earlier/N/` beside it (N = 1, 2, ...).

In a distributed job every worker reads the checkpoint to resume, and only
the first (rank 0) writes it. The optimizer state then lives on the servers
and cannot be saved, so only parameters and history are kept (the chapters'
SGD without momentum has no state to lose).
"""
import errno
import glob
import hashlib
import json
import os
import shutil
import tempfile

from mxnet import nd
from mxnet.base import MXNetError

from .._files import replacing
from .._messages import first_line
from .history import History

PARAMS = 'model.params'
STATES = 'trainer.states'
HISTORY = 'history.json'
BEST = 'best.params'
MANIFEST = 'manifest.json'
EARLIER = 'earlier'


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or read, or does not fit the run."""


def option_flag(name):
    """`batch_size` -> `--batch-size`, as the command line spells it."""
    return '--' + name.replace('_', '-')


class Checkpoint:
    """The checkpoint directory of one run.

    `write=False` makes `save` do nothing (a worker other than rank 0);
    `trainer_states=False` leaves the optimizer state out (a dist kvstore).
    """

    def __init__(self, directory, write=True, trainer_states=True):
        self.directory = os.path.normpath(directory)
        self.write = write
        self.trainer_states = trainer_states
        parent, name = os.path.split(os.path.abspath(self.directory))
        self._parent, self._name = parent, name
        self._old = os.path.join(parent, f'.{name}.old')

    def path(self, name):
        return os.path.join(self.directory, name)

    def exists(self):
        """Whether there is a complete epoch to resume from."""
        return self._current() is not None

    def epochs_saved(self):
        """The number of epochs in the checkpoint (0 when there is none)."""
        current = self._current()
        return 0 if current is None else len(History.load(os.path.join(current, HISTORY)))

    def save(self, net, trainer, history):
        """Write the epoch `history` ends with as one unit (see the module's doc).

        Raises CheckpointError when it cannot be written (a full disk, say);
        the previous epoch is then still in place.
        """
        if not self.write:
            return
        self.recover()
        os.makedirs(self._parent, exist_ok=True)
        saving = None
        try:
            saving = tempfile.mkdtemp(dir=self._parent, prefix=f'.{self._name}.saving-')
            os.chmod(saving, 0o777 & ~_umask())  # mkdtemp's 0o700 would hide it from others
            _write_parameters(net, os.path.join(saving, PARAMS))
            names = [PARAMS]
            if self.trainer_states:
                _write_states(trainer, os.path.join(saving, STATES))
                names.append(STATES)
            _write_history(history, os.path.join(saving, HISTORY))
            names.append(HISTORY)
            best = _keep_best(history, self._current(), saving)
            if best is not None:
                names.append(BEST)
            _write_manifest(saving, len(history), names, best)
        except (OSError, MXNetError) as err:
            if saving is not None:
                shutil.rmtree(saving, ignore_errors=True)
            then = (f'epoch {self.epochs_saved()} is still there: free some space or fix the '
                    f'folder, then add --resume to continue' if self.exists() else
                    'nothing is saved yet: free some space or fix the folder, then start the '
                    'run again (without --resume)')
            raise CheckpointError(f'cannot write the checkpoint for epoch {len(history)} to '
                                  f'{self.directory} ({write_error_reason(err)}); {then}') from None
        _retire(self.directory, self._old)
        _install(saving, self.directory)
        _drop_retired(self._old)

    def recover(self):
        """Put the newest complete epoch back in place after a kill mid-save, and
        remove what such a kill left half written."""
        current = self._current()
        if current is not None and current != self.directory:
            os.replace(current, self.directory)
        for stray in self._saving_folders() + [self._old]:
            _drop(stray)

    def set_aside(self, log=print):
        """Move this checkpoint (if any) into `earlier/N/` beside it, so that a
        fresh run into the same directory keeps it; returns where it went."""
        if not self.exists():
            return None
        self.recover()
        return keep_earlier(self._parent, [self._name], log)

    def history(self):
        """The saved history, after checking the files against the manifest."""
        current = self._complete()
        try:
            history = History.load(os.path.join(current, HISTORY))
        except (OSError, ValueError, KeyError) as err:
            raise CheckpointError(f'the history in {self.directory} cannot be read '
                                  f'({first_line(err)}); start afresh without --resume') from None
        _check_history(history, current, self.directory)
        return history

    def best(self):
        """(path, epoch, test accuracy) of the best epoch's parameters so far,
        or None (no checkpoint, or one written before the best was kept)."""
        current = self._current()
        if current is None or not os.path.isfile(os.path.join(current, MANIFEST)):
            return None
        best = _manifest(current).get('best')
        if best is None:
            return None
        return os.path.join(self.directory, BEST), best['epoch'], best['test_acc']

    def copy_parameters(self, path):
        """Copy the saved parameters to `path` (through a temporary file)."""
        current = self._complete()
        with replacing(path) as tmp:
            shutil.copyfile(os.path.join(current, PARAMS), tmp)

    def restore(self, net, trainer, ctx, options=None):
        """Load parameters and optimizer state into `net` and `trainer`; return the history.

        `options` (name -> value) are the run's settings that must equal the
        saved run's; a difference is refused, naming the option.
        """
        history = self.history()
        current = self._complete()
        _check_options(history.meta.get('options', {}), options or {}, self.directory)
        try:
            _infer_shapes(net, history.meta.get('input_shape'), ctx)
            mismatch = _parameter_mismatch(net, nd.load(os.path.join(current, PARAMS)))
            if mismatch is None:
                net.load_parameters(os.path.join(current, PARAMS), ctx=ctx)
                if self.trainer_states:
                    trainer.load_states(os.path.join(current, STATES))
        except Exception as err:  # MXNet raises many kinds on a file that does not fit
            raise CheckpointError(f'the checkpoint in {self.directory} does not fit this '
                                  f'network ({first_line(err)}); start afresh without --resume '
                                  f'or pick another checkpoint directory') from None
        if mismatch is not None:
            raise CheckpointError(f'the checkpoint in {self.directory} does not fit this network '
                                  f'(it holds another network\'s parameters): {mismatch}; start '
                                  f'afresh without --resume or pick another checkpoint directory')
        if self.trainer_states and not _states_fit(trainer):
            raise CheckpointError(
                f'the optimizer state in {self.directory} does not fit this trainer\'s '
                f'parameters: a Trainer given net.collect_params() orders them by name, and '
                f'this network\'s layers are numbered differently from the saved run\'s; '
                f'build it with gluon.Trainer(list(net.collect_params().values()), ...) in '
                f'both runs, or build the network as the saved run did')
        return history

    def _complete(self):
        """The folder of the newest complete epoch, its files checked."""
        current = self._current()
        if current is None:
            raise CheckpointError(f'no checkpoint to resume in {self.directory}; '
                                  f'start without --resume')
        _verify(current, self.directory)
        return current

    def _saving_folders(self):
        return sorted(glob.glob(os.path.join(glob.escape(self._parent),
                                             f'.{glob.escape(self._name)}.saving-*')))

    def _current(self):
        """The folder that holds the newest complete epoch, or None."""
        if os.path.isfile(self.path(HISTORY)):
            return self.directory
        complete = [(_manifest(folder)['epoch'], folder) for folder in self._saving_folders()
                    if os.path.isfile(os.path.join(folder, MANIFEST))]
        if complete:
            return max(complete)[1]
        return self._old if os.path.isfile(os.path.join(self._old, HISTORY)) else None


def _infer_shapes(net, input_shape, ctx):
    """Run `net` once on zeros of `input_shape` (one example's, as the run that
    saved the checkpoint recorded it) when some of its parameters still wait
    for their shapes, so that every shape in the file can be checked."""
    params = net.collect_params().values()
    if input_shape and any(0 in p.shape for p in params):
        first = ctx[0] if isinstance(ctx, (list, tuple)) else ctx
        net(nd.zeros((1,) + tuple(input_shape), ctx=first))


def _parameter_mismatch(net, saved):
    """The first way the arrays `saved` (as `save_parameters` names them:
    '0.weight', ...) do not fit `net`'s parameters, in words; None when they
    fit. A dimension the network has not inferred yet fits any size."""
    if not any('.' in name for name in saved):
        return None  # the older format, named by prefix: left to MXNet to check
    params = net._collect_params_with_prefix()  # the names save_parameters writes
    for name, param in params.items():
        if name not in saved:
            return f'{name} ({param.name}) of this network is not in the file'
        found, expected = saved[name].shape, param.shape
        if len(found) != len(expected) or any(e not in (0, f)
                                              for e, f in zip(expected, found)):
            known = '(' + ', '.join(str(e) if e else '?' for e in expected) + ')'
            return (f'layer {param.name} ({name}) is {found} in the file but {known} in '
                    f'this network')
    extra = sorted(set(saved) - set(params))
    return f'the file has {extra[0]}, which this network lacks' if extra else None


def _write_parameters(net, path):
    net.save_parameters(path)


def _states_fit(trainer):
    """Whether every loaded optimizer state has the shape of the parameter it
    is paired with (by index in the trainer's order)."""
    for updater in getattr(trainer, '_updaters', []):
        for index, state in updater.states.items():
            shape = trainer._params[index].shape
            arrays = state if isinstance(state, (list, tuple)) else [state]
            if any(getattr(a, 'shape', shape) != shape for a in arrays if a is not None):
                return False
    return True


def _write_states(trainer, path):
    trainer.save_states(path)


def _write_history(history, path):
    history.save(path)


def _keep_best(history, previous, saving):
    """Put the parameters of the best epoch so far (the highest test accuracy,
    the earliest of equals) into the folder `saving` as BEST: a link to its
    own parameters when the epoch just trained is the best, else to the
    previous checkpoint's BEST. Return {'epoch', 'test_acc'} of that epoch,
    or None when the previous checkpoint has no BEST for it (written before
    the best was kept)."""
    accs = history.column('test_acc')
    index = accs.index(max(accs))
    best = {'epoch': history.epochs[index]['epoch'], 'test_acc': accs[index]}
    if index == len(history) - 1:
        source = os.path.join(saving, PARAMS)
    elif previous is not None and os.path.isfile(os.path.join(previous, MANIFEST)) \
            and _manifest(previous).get('best', {}).get('epoch') == best['epoch']:
        source = os.path.join(previous, BEST)
    else:
        return None
    _link_or_copy(source, os.path.join(saving, BEST))
    return best


def _link_or_copy(source, target):
    """A hard link (no second copy on disk), or a copy where links are refused.
    Files in a checkpoint are never changed after they are written, so a link
    stays the content it was made from."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write_manifest(folder, epoch, names, best=None):
    """Record the size and SHA-256 of each file, sync them, then write the
    manifest (with the best epoch and its test accuracy, when given)."""
    files, digests = {}, {}
    for name in names:
        path = os.path.join(folder, name)
        _sync(path)
        inode = os.stat(path).st_ino  # a link to a file already summed is not read again
        digests[inode] = digests.get(inode) or _sha256(path)
        files[name] = {'bytes': os.path.getsize(path), 'sha256': digests[inode]}
    path = os.path.join(folder, MANIFEST)
    with open(path, 'w') as f:
        json.dump({'epoch': epoch, 'files': files, **({'best': best} if best else {})}, f,
                  indent=2)
        f.flush()
        os.fsync(f.fileno())


def _retire(directory, old):
    """Rename the previous epoch's folder out of the way (to be dropped once
    the new one is in place)."""
    if os.path.exists(directory):
        os.replace(directory, old)


def _install(saving, directory):
    """Rename the complete folder `saving` to `directory`."""
    os.replace(saving, directory)
    _sync_dir(os.path.dirname(os.path.abspath(directory)))


def _drop_retired(old):
    """Remove the previous epoch's folder, now that the new one is in place."""
    _drop(old)


def _drop(path):
    shutil.rmtree(path, ignore_errors=True)


def _manifest(folder):
    with open(os.path.join(folder, MANIFEST)) as f:
        return json.load(f)


def _verify(folder, directory):
    """Refuse a folder whose files do not match its manifest (a checkpoint
    written before manifests existed has none, and is taken as it is)."""
    if not os.path.isfile(os.path.join(folder, MANIFEST)):
        return
    try:
        files = _manifest(folder)['files']
    except (OSError, ValueError, KeyError) as err:
        raise CheckpointError(f'the checkpoint in {directory} is damaged: its manifest cannot '
                              f'be read ({first_line(err)}); start afresh without --resume') \
            from None
    for name, expected in files.items():
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            problem = 'is missing'
        elif os.path.getsize(path) != expected['bytes']:
            problem = f'has {os.path.getsize(path)} bytes, not {expected["bytes"]}'
        elif _sha256(path) != expected['sha256']:
            problem = 'does not match its checksum'
        else:
            continue
        raise CheckpointError(f'the checkpoint in {directory} is damaged: {name} {problem}; '
                              f'start afresh without --resume (the damaged run is then kept '
                              f'in {EARLIER}/)')


def _check_history(history, folder, directory):
    """Refuse a history whose epochs are not 1, 2, ..., up to the epoch the
    manifest names: resuming it would number epochs on top of other weights."""
    numbers = [record.get('epoch') for record in history.epochs]
    if numbers != list(range(1, len(numbers) + 1)):
        problem = f'its epochs are numbered {numbers}, not 1 to {len(numbers)}'
    elif os.path.isfile(os.path.join(folder, MANIFEST)) \
            and _manifest(folder).get('epoch') != len(numbers):
        problem = (f'{HISTORY} has {len(numbers)} epoch(s) but {MANIFEST} says it holds '
                   f'epoch {_manifest(folder).get("epoch")}')
    else:
        return
    raise CheckpointError(f'the checkpoint in {directory} is damaged: {problem}; start afresh '
                          f'without --resume (the damaged run is then kept in {EARLIER}/)')


def _check_options(saved, given, directory):
    for name in sorted(set(saved) & set(given)):
        if saved[name] != given[name]:
            flag = option_flag(name)
            was = 'left unset' if saved[name] is None else f'{flag} {saved[name]}'
            now = f'{flag} unset' if given[name] is None else f'{flag} {given[name]}'
            raise CheckpointError(f'{now} differs from the run checkpointed in {directory}, '
                                  f'which had {was}; resume with the same value, or start '
                                  f'afresh without --resume')


def keep_earlier(directory, names, log=print):
    """Move the entries `names` of `directory` that exist into a new numbered
    folder `directory/earlier/N/`, so that a fresh run overwrites nothing.
    Returns that folder, or None when there was nothing to move."""
    present = [name for name in names if os.path.lexists(os.path.join(directory, name))]
    if not present:
        return None
    earlier = os.path.join(directory, EARLIER)
    os.makedirs(earlier, exist_ok=True)
    number = 1 + max([int(n) for n in os.listdir(earlier) if n.isdigit()], default=0)
    while True:
        target = os.path.join(earlier, str(number))
        try:
            os.mkdir(target)  # atomic: two runs never pick the same number
            break
        except FileExistsError:
            number += 1
    for name in present:
        os.replace(os.path.join(directory, name), os.path.join(target, name))
    log(f'keeping the earlier run ({", ".join(present)}) in {target}')
    return target


MXNET_WRITE_FAILED = 'FileStream.Write incomplete'  # dmlc-core's words for a short write


def write_error_reason(err):
    """Why writing a file failed, in a few words: 'No space left on device' rather
    than '[Errno 28] No space left on device', or than MXNet's check that a
    write was short (which a full disk makes)."""
    if isinstance(err, MXNetError) and MXNET_WRITE_FAILED in str(err):
        return f'{os.strerror(errno.ENOSPC)}: MXNet reported an incomplete write'
    return getattr(err, 'strerror', None) or first_line(err)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _sync(path):
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


def _sync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
