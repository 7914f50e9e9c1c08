"""Checks that the tools' outputs can be written, made before any work.

``tools/test.py --out`` is written after the whole test, and the work dir when the Runner
starts: a path under a file, or in a folder that cannot be written, would fail only then.
These checks write nothing; folders that do not exist yet are fine where the nearest
existing one is a writable folder (mmengine creates the rest).
"""

import os
from pathlib import Path

from .input_error import InputError


def _nearest_existing(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path('.')


def _check_creatable(path: Path, argument: str) -> None:
    ancestor = _nearest_existing(path.absolute())
    if not ancestor.is_dir():
        raise InputError(f'{argument} {path}: {ancestor} is a file, not a folder')
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f'{argument} {path}: cannot create it, {ancestor} is not writable')


def check_output_file(path: str | os.PathLike, argument: str) -> None:
    """Raise ``InputError`` unless ``path`` can be written as a file.

    Args:
        path: the file to be written (it may exist; it is replaced).
        argument: the command-line argument that named it, e.g. ``--out``.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f'{argument} {path} is a folder; give a file name inside it')
    if path.exists():
        if not os.access(path, os.W_OK):
            raise InputError(f'{argument} {path} exists and is not writable')
        return
    _check_creatable(path, argument)


def check_output_dir(path: str | os.PathLike, argument: str) -> None:
    """Raise ``InputError`` unless ``path`` is, or can be created as, a writable folder.

    Args:
        path: the folder.
        argument: the command-line argument (or config key) that named it.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise InputError(f'{argument} {path} is a file, not a folder')
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f'{argument} {path} is not writable')
        return
    _check_creatable(path, argument)
