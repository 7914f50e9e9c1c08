"""Reading checkpoint files with errors that say what the file is, and picking the checkpoint
a bare ``--resume`` continues from.

``torch.load`` answers every unreadable file with the same advice: load it again with
``weights_only=False``. For random bytes that is wrong, and for a file holding arbitrary
Python objects it means running code from the file. ``read_checkpoint`` tells the cases apart
and raises an ``InputError`` naming the file:

* not a torch file at all (neither a zip archive nor a pickle; an empty file);
* a torch zip archive without its central directory, or a legacy pickle that ends early: the
  file is truncated (a run killed while saving, a copy cut short);
* a pickle that the weights-only loader refuses: the message names the offending globals.

``find_resumable_checkpoint`` is what a bare ``--resume`` uses instead of mmengine's
``work_dir/last_checkpoint`` alone: the pointer may be empty (the run was killed while
writing it) or name a checkpoint that is missing or truncated; then the newest checkpoint in
the work dir that loads is taken, and the choice is reported.
"""

import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..utils.input_error import InputError

ZIP_MAGIC = b'PK\x03\x04'  # torch.save's default format since torch 1.6
PICKLE_PROTO = 0x80  # the first byte of a pickle of protocol >= 2 (torch's legacy format)
LAST_CHECKPOINT = 'last_checkpoint'  # mmengine's pointer file in the work dir


def _unsafe_globals(path: Path, error: Exception, is_zip: bool) -> list[str]:
    """The globals the weights-only unpickler refused, from the file (zip format) or else
    from torch's message."""
    if is_zip:
        try:
            return torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except (RuntimeError, pickle.UnpicklingError, ValueError):
            pass  # fall back to the message below
    return sorted(set(re.findall(r'GLOBAL ([\w.]+)', str(error))))


def _trusted_resave_command(path: Path) -> str:
    # Keeps only the weights: the file's other entries are what the safe loader refused.
    return (
        f"python -c \"import torch; c = torch.load('{path}', weights_only=False); "
        f"torch.save(dict(state_dict=c.get('state_dict', c)), '{path.with_suffix('')}"
        '.weights.pth\')"'
    )


def read_checkpoint(path: str | os.PathLike, map_location='cpu', mmap: bool = False) -> dict:
    """Load a checkpoint file with torch's weights-only loader; every reason it cannot be
    used is an ``InputError`` naming the file (module docstring).

    Args:
        path: a local checkpoint file.
        map_location: as for ``torch.load``.
        mmap: memory-map the tensors (zip format only; ignored for the legacy format), so
            that reading the meta alone does not read the weights.

    Returns:
        The checkpoint dict (``state_dict``, ``meta``, ...).
    """
    path = Path(path)
    if not path.exists():
        raise InputError('checkpoint not found', path)
    if not path.is_file():
        raise InputError('is not a file; a checkpoint is a .pth file', path)
    size = path.stat().st_size
    if size == 0:
        raise InputError(
            'empty file (0 bytes), not a checkpoint: a run killed while saving leaves such '
            'files; use an earlier checkpoint',
            path,
        )
    with open(path, 'rb') as stream:
        head = stream.read(8)
    is_zip = head.startswith(ZIP_MAGIC)
    if not is_zip and head[0] != PICKLE_PROTO:
        raise InputError(
            f'not a checkpoint: neither a torch zip archive nor a torch pickle (it starts '
            f'with bytes {head.hex(" ")}); give the .pth file that tools/train.py or '
            'tools/model_converters/publish_model.py wrote',
            path,
        )
    if is_zip and not zipfile.is_zipfile(path):
        raise InputError(
            f'truncated checkpoint: a torch zip archive without its end ({size} bytes), as '
            'left by a run killed while saving or a copy cut short; copy it again or use an '
            'earlier checkpoint',
            path,
        )
    try:
        with warnings.catch_warnings():
            # Bytes that only start like a pickle make torch warn of an unknown protocol
            # before failing: the error below says what the file is.
            warnings.filterwarnings('ignore', 'Detected pickle protocol', UserWarning)
            loaded = torch.load(
                path, map_location=map_location, weights_only=True, mmap=mmap and is_zip
            )
    except pickle.UnpicklingError as error:
        names = _unsafe_globals(path, error, is_zip)
        if not names:
            # torch's message here is its weights_only=False advice: not for random bytes.
            raise InputError(
                f'not a checkpoint: it starts like a torch pickle but does not unpickle '
                f'({size} bytes); give the .pth file that tools/train.py or '
                'tools/model_converters/publish_model.py wrote',
                path,
            ) from error
        raise InputError(
            f"holds Python objects that torch's safe (weights-only) loader will not create: "
            f'{", ".join(names)}. Checkpoints written here hold only tensors and builtin '
            'types, so this one comes from elsewhere; loading it runs code from the file. '
            f'Only if you trust its origin, keep its weights with: '
            f'{_trusted_resave_command(path)}',
            path,
        ) from error
    except (RuntimeError, EOFError) as error:
        # zip archives with an end were checked above: what fails here is a legacy pickle
        # that ends early, or a damaged archive member.
        raise InputError(
            f'truncated or damaged checkpoint ({size} bytes; torch: {str(error)[:200]}); '
            'copy it again or use an earlier checkpoint',
            path,
        ) from error
    if not isinstance(loaded, dict):
        raise InputError(
            f'a torch file holding a {type(loaded).__name__}, not a checkpoint (a dict with '
            'a state_dict)',
            path,
        )
    return loaded


@dataclass
class ResumeChoice:
    """What a bare ``--resume`` continues from.

    Attributes:
        checkpoint: the checkpoint to resume from; None to start from scratch.
        notes: what was found on the way (no pointer, an empty one, damaged files).
        trouble: whether a note is a problem (an empty or stale pointer, a checkpoint that
            does not load) rather than a fresh work dir.
    """

    checkpoint: str | None
    notes: list[str] = field(default_factory=list)
    trouble: bool = False

    def summary(self, work_dir: str | os.PathLike, start: str | None = None) -> str:
        """One log line: the choice and why; ``start`` is the ``load_from`` a run with
        nothing to resume starts from (None: from scratch)."""
        why = '; '.join(self.notes)
        if self.checkpoint is None:
            reason = f' ({why})' if why else ''
            begin = f'from load_from {start}' if start else 'from scratch'
            return (
                f'--resume: no complete checkpoint in {work_dir}{reason}: training starts {begin}'
            )
        if not why:
            return f'--resume: resuming from {self.checkpoint}'
        return f'--resume: {why}; resuming from the newest complete checkpoint {self.checkpoint}'


def _check_resumable(path: Path) -> str | None:
    """None if ``path`` loads as a training checkpoint, else why not."""
    try:
        loaded = read_checkpoint(path, mmap=True)
    except InputError as error:
        return error.message
    meta = loaded.get('meta')
    if 'state_dict' not in loaded or not isinstance(meta, dict) or 'iter' not in meta:
        return 'not a training checkpoint (no state_dict or meta.iter)'
    return None


def _newest_first(work_dir: Path) -> list[Path]:
    def key(path: Path):
        number = re.findall(r'\d+', path.stem)
        # mtime first; the iteration in the name breaks ties of a coarse clock
        return path.stat().st_mtime, int(number[-1]) if number else -1

    return sorted((p for p in work_dir.glob('*.pth') if p.is_file()), key=key, reverse=True)


def find_resumable_checkpoint(work_dir: str | os.PathLike) -> ResumeChoice:
    """The checkpoint a bare ``--resume`` continues from: the one ``work_dir/last_checkpoint``
    names if it loads, else the newest ``*.pth`` in ``work_dir`` that loads (by modification
    time), else none. Every file passed over is named in ``notes``."""
    work_dir = Path(work_dir)
    notes, tried, trouble = [], set(), False
    pointer = work_dir / LAST_CHECKPOINT
    if pointer.is_file():
        named = pointer.read_text().strip()
        trouble = True  # unless it names a checkpoint that loads
        if not named:
            notes.append(f'{pointer} is empty')
        else:
            target = Path(named)
            if not target.is_absolute() and not target.exists():
                target = work_dir / target.name
            elif target.resolve().parent != work_dir.resolve():
                # A work dir copied from another: its pointer still names the original's file.
                notes.append(f'{pointer} names {named}, outside {work_dir}: its namesake here')
                target = work_dir / target.name
            problem = 'not found' if not target.is_file() else _check_resumable(target)
            if problem is None:
                return ResumeChoice(str(target), notes, bool(notes))
            notes.append(f'{pointer} names {named}: {problem}')
            tried.add(target.resolve())
    elif work_dir.is_dir():
        notes.append(f'no {LAST_CHECKPOINT} file')
    else:
        return ResumeChoice(None, [f'{work_dir} does not exist yet'])
    for candidate in _newest_first(work_dir):
        if candidate.resolve() in tried:
            continue
        problem = _check_resumable(candidate)
        if problem is None:
            return ResumeChoice(str(candidate), notes, trouble)
        notes.append(f'{candidate.name}: {problem}')
        trouble = True
    return ResumeChoice(None, notes, trouble)
