"""Bad input named in one line: the error type every reader raises and every tool reports.

A user's file, key or argument that cannot be used raises ``InputError`` (or one of its
subclasses: ``CalibrationError``, ``GroundTruthError``, ``FrameReadError``,
``SubmissionError``, ...). Its message names where the problem is (``file:line``, a key, a
camera, a frame, an argument) and what to do about it. ``run_tool`` turns such an error
into one line on stderr, ``<tool>: <message>``, and exit status 2; ``--debug`` on any
tool's command line shows the traceback instead. Every other exception is a bug and keeps
its traceback.
"""

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_BAD_INPUT = 2


class InputError(ValueError):
    """Input that cannot be used. ``where`` (a path, optionally with a line number)
    prefixes the message as ``file:line: message``.

    Args:
        message: what is wrong, and how to fix it where that is not obvious.
        path: the file (or folder) at fault, if any.
        line: 1-based line number in ``path``, if it has lines.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        if self.path is None:
            return self.message
        if self.line is None:
            return f'{self.path}: {self.message}'
        return f'{self.path}:{self.line}: {self.message}'


def run_tool(tool: str, main: Callable[[Sequence[str] | None], object], argv=None) -> None:
    """Run a tool's ``main(argv)``; an ``InputError`` becomes ``tool: message`` on stderr
    and exit status 2 (the traceback with ``--debug``).

    Args:
        tool: the name printed first, e.g. ``infer``.
        main: the tool's entry point taking the argument list (without ``--debug``).
        argv: arguments (default ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in argv
    if debug:
        argv.remove('--debug')
    try:
        main(argv)
    except InputError as error:
        if debug:
            raise
        message = str(error)
        if message.startswith(f'{tool}: '):  # some messages already name the tool
            message = message[len(tool) + 2 :]
        print(f'{tool}: {message}', file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
