"""One training run per work dir: a real second process holds the lock."""

import os

import pytest

from mmsparse4d.engine.work_dir_lock import LOCK_NAME, WorkDirLock, is_rank_zero
from mmsparse4d.utils.input_error import InputError
from tests.conftest import work_dir_held_by_another_process


def test_a_held_work_dir_is_refused_naming_the_holder_and_freed_when_it_dies(tmp_path):
    work = tmp_path / 'work'
    with work_dir_held_by_another_process(work) as holder:
        with pytest.raises(InputError) as caught:
            WorkDirLock(work).acquire()
        assert str(caught.value) == (
            f'{work}: another training run (pid {holder.pid}) is using this work dir; '
            'wait for it to end or give this run another --work-dir'
        )
    lock = WorkDirLock(work).acquire()
    assert (work / LOCK_NAME).read_text().strip() == str(os.getpid())
    lock.release()
    with WorkDirLock(work):  # released: taken again
        pass


def test_only_rank_zero_takes_the_lock(monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    monkeypatch.delenv('SLURM_PROCID', raising=False)
    monkeypatch.delenv('OMPI_COMM_WORLD_RANK', raising=False)
    assert is_rank_zero()  # a single process
    monkeypatch.setenv('RANK', '1')
    assert not is_rank_zero()
    monkeypatch.setenv('RANK', '0')
    assert is_rank_zero()
