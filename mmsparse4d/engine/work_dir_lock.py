"""One training run per work dir.

Two ``tools/train.py`` runs into one work dir interleave their logs and overwrite each
other's checkpoints and ``last_checkpoint``. The run holds an exclusive ``flock`` on
``WORK_DIR/.train.lock`` for its lifetime, and a second run is refused naming the holder's
pid. The lock belongs to the open file, not to the file's existence: the kernel releases it
when the process exits however it exits (killed, crashed), so no stale lock is ever left
behind, and the file itself stays (removing it would let a third run lock a new file while
the second still holds the old one).

In a distributed run only the process of global rank 0 takes the lock: one lock per run,
and the other ranks of the same run must not refuse each other.
"""

import fcntl
import os
from pathlib import Path

from ..utils.input_error import InputError

LOCK_NAME = '.train.lock'


def is_rank_zero() -> bool:
    """Rank 0 of a distributed launch, or a plain single process. Read from the launcher's
    environment (torchrun, slurm, mpi) because the process group does not exist yet."""
    for variable in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if variable in os.environ:
            return os.environ[variable] == '0'
    return True


class WorkDirLock:
    """An exclusive lock on a work dir, held from ``acquire`` until ``release`` or the
    process's exit.

    Args:
        work_dir: the run's work dir (created if missing).
    """

    def __init__(self, work_dir: str | os.PathLike):
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / LOCK_NAME
        self._file = None

    def acquire(self) -> 'WorkDirLock':
        """Take the lock, or raise ``InputError`` naming the work dir and the holder's pid."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # 'a+': opening must neither truncate the holder's pid nor fail if the file exists.
        lock_file = open(self.path, 'a+')  # held open for the run's lifetime
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or 'unknown'
            lock_file.close()
            raise InputError(
                f'another training run (pid {holder}) is using this work dir; wait for it to '
                'end or give this run another --work-dir',
                self.work_dir,
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f'{os.getpid()}\n')
        lock_file.flush()
        self._file = lock_file
        return self

    def release(self) -> None:
        """Give the lock up (closing the file releases the flock)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
