"""PyAV (``import av``), imported where an mp4 is met: only mp4 videos need it, and a
missing PyAV is then one clear line naming what needed it (an ``InputError``), not an
``ImportError`` traceback from a worker process after the first files are written."""

import importlib
from types import ModuleType

from .input_error import InputError


def import_pyav(needed_by: str) -> ModuleType:
    """The ``av`` module.

    Args:
        needed_by: what needs it, for the error: a video's path or an argument
            (``'--rgb-format mp4'``).

    Raises:
        InputError: PyAV is not installed.
    """
    try:
        return importlib.import_module('av')
    except ImportError:
        raise InputError(
            'needs PyAV (for mp4 videos), which is not installed here: pip install av '
            '(`make install` installs it)',
            path=needed_by,
        ) from None
