"""SlotDataLoader: the plain loader's batches, each slot always loaded by the same worker
process (real DataLoader workers), resumable by the sampler, errors passed on; and the
loop's choice of it (``with_slot_workers``)."""

import gc
import multiprocessing
import threading
import time

import pytest
import torch
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader, get_worker_info

from mmsparse4d.datasets import slot_data_loader
from mmsparse4d.datasets.samplers import SequentialGroupSampler
from mmsparse4d.datasets.slot_data_loader import (
    PassClosedError,
    SlotDataLoader,
    slot_owners,
    with_slot_workers,
)
from mmsparse4d.engine.loops import fast_forward
from tests.conftest import shut_workers_down

pytestmark = pytest.mark.filterwarnings('ignore:.*This DataLoader will create')


class Frames:
    """Three scenes of 20 frames; a sample is (its index, the worker that loaded it)."""

    def __init__(self, img_key=None, broken=None):
        self.img_key = img_key
        self.broken = broken

    def __len__(self):
        return 60

    def get_data_info(self, index):
        return dict(
            scene_name=f's{index // 20}',
            frame_idx=index % 20,
            cams={'Camera_0': dict(img_key=self.img_key)},
        )

    def __getitem__(self, index):
        if index == self.broken:
            raise LookupError(f'frame {index} cannot be read')
        info = get_worker_info()
        return index, -1 if info is None else info.id


def collate(samples):
    return torch.tensor(samples)  # [B, 2]: index, worker


def _loader(batch=4, workers=2, dataset=None, persistent=True):
    dataset = dataset or Frames()
    sampler = SequentialGroupSampler(
        dataset, batch_size=batch, skip_prob=0.3, split_num=2, rank=0, world_size=1, seed=7
    )
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=persistent,
        collate_fn=collate,
    )


def _indices(batches):
    return [batch[:, 0].tolist() for batch in batches]


def test_slot_owners_cover_every_slot_once():
    assert slot_owners(4, 2) == [[0, 2], [1, 3]]
    assert slot_owners(5, 2) == [[0, 2, 4], [1, 3]]
    assert slot_owners(2, 3) == [[0], [1]]  # no idle worker
    for batch, workers in [(24, 15), (16, 12), (8, 8), (3, 1)]:
        owned = sorted(slot for slots in slot_owners(batch, workers) for slot in slots)
        assert owned == list(range(batch))


def _workers(batches):
    return torch.stack([batch[:, 1] for batch in batches])  # [batches, B]


@pytest.mark.parametrize('persistent', [True, False])
def test_same_batches_as_the_plain_loader_each_slot_on_one_worker(persistent):
    plain = list(_loader(persistent=False))
    slots = SlotDataLoader(_loader(persistent=persistent))
    assert len(slots) == len(plain) == 15
    for epoch in range(2):  # a second pass, after set_epoch
        slots.sampler.set_epoch(epoch)
        reference = _loader(persistent=False)
        reference.sampler.set_epoch(epoch)
        batches = list(slots)
        assert _indices(batches) == _indices(reference)
        # Slot b always from worker b mod 2; the plain loader alternates per batch.
        assert (_workers(batches) == torch.tensor([0, 1, 0, 1])).all()
    assert (_workers(plain)[:, 0] == torch.tensor([0, 1] * 8)[:15]).all()
    slots.close()
    shut_workers_down(slots)


@pytest.mark.parametrize('started', [True, False], ids=['pass-running', 'pass-just-built'])
def test_fast_forward_through_a_slot_loader_gives_the_plain_batches(started):
    # The reference replays in this process: an unfinished iterator's workers, left to the
    # garbage collector, stall whichever test comes next (5 s per worker).
    replayed = _InfiniteDataloaderIterator(_loader(workers=0, persistent=False))
    for _ in range(17):
        next(replayed)
    loader = SlotDataLoader(_loader())
    iterator = _InfiniteDataloaderIterator(loader)  # the loop builds it before the resume
    if started:
        next(iterator)
    assert fast_forward(iterator, loader, 17)
    batches = [next(iterator) for _ in range(5)]
    assert _indices(batches) == _indices(next(replayed) for _ in range(5))
    assert (_workers(batches) == torch.tensor([0, 1, 0, 1])).all()  # after the workers' reset
    loader.close()
    shut_workers_down(loader)


def test_a_worker_error_reaches_the_training_process():
    first = next(iter(_loader(workers=0, persistent=False)))
    drawn = first[3, 0].item()  # slot 3 of the first batch
    loader = SlotDataLoader(_loader(dataset=Frames(broken=drawn), persistent=False))
    iterator = iter(loader)
    for _ in range(2):  # and again on the next call, rather than waiting forever
        with pytest.raises(LookupError, match=f'frame {drawn} cannot be read'):
            next(iterator)
    loader.close()


def _slow_collate_failing_at(batch_number: int):
    """A collate that takes longer for earlier batches (so that the collating threads finish
    out of order) and fails on the batch whose first sample is ``batch_number * 100``."""

    def slow(samples):
        first = samples[0][0]
        time.sleep(0.02 * (3 - first % 3))
        if first == batch_number * 100:
            raise ArithmeticError(f'batch {batch_number} cannot be collated')
        return torch.tensor(samples)

    return slow


class Numbered(Frames):
    """Sample i of batch b is b * 100 + i (a sampler of consecutive indices, batch 4)."""

    def __len__(self):
        return 1000

    def __getitem__(self, index):
        return index, get_worker_info().id


def _numbered_loader(collate_fn):
    batches = [[b * 100 + i for i in range(4)] for b in range(8)]
    return DataLoader(
        Numbered(),
        batch_size=4,
        sampler=[i for b in batches for i in b],
        num_workers=2,
        collate_fn=collate_fn,
    )


def test_batches_collated_side_by_side_come_out_in_order():
    loader = SlotDataLoader(_numbered_loader(_slow_collate_failing_at(-1)))
    assert [batch[0, 0].item() for batch in loader] == [b * 100 for b in range(8)]
    loader.close()


def test_a_collate_error_reaches_the_training_process_after_the_batches_before_it():
    loader = SlotDataLoader(_numbered_loader(_slow_collate_failing_at(3)))
    iterator = iter(loader)
    assert [next(iterator)[0, 0].item() for _ in range(3)] == [0, 100, 200]
    for _ in range(2):  # and again on the next call
        with pytest.raises(ArithmeticError, match='batch 3 cannot be collated'):
            next(iterator)
    loader.close()


def _first_indices(iterator, count: int, seconds: float = 30.0):
    """The first sample of each of ``count`` batches, taken in a thread: 'hung' if they do
    not come within ``seconds``."""
    out = []
    thread = threading.Thread(
        target=lambda: out.extend(next(iterator)[0, 0].item() for _ in range(count)),
        daemon=True,
    )
    thread.start()
    thread.join(seconds)
    return 'hung' if thread.is_alive() else out


@pytest.mark.parametrize('persistent', [True, False])
def test_a_pass_the_loader_stopped_refuses_rather_than_waits(persistent):
    loader = SlotDataLoader(_loader(persistent=persistent))
    first = iter(loader)
    assert (
        next(first)[:, 0].tolist()
        == next(iter(_loader(workers=0, persistent=False)))[:, 0].tolist()
    )
    second = iter(loader)  # a new pass (a resume) stops the first
    for _ in range(2):
        with pytest.raises(PassClosedError, match='iterate the loader again'):
            next(first)
    assert len(list(second)) == 15
    loader.close()
    with pytest.raises(PassClosedError):
        next(second)
    shut_workers_down(loader)


class SlowFirstSample(Numbered):
    """Sample 0 takes ``delay`` seconds (a worker's slow start)."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    def __getitem__(self, index):
        if index == 0:
            time.sleep(self.delay)
        return super().__getitem__(index)


def test_a_new_pass_waits_for_the_last_ones_slow_worker_with_persistent_workers(monkeypatch):
    # The last pass's thread still waits for a part from the workers the new pass resets:
    # left running, it took the reset's reply and the new pass waited for ever.
    monkeypatch.setattr(slot_data_loader, 'CLOSE_WAIT_S', 0.2)
    loader = SlotDataLoader(
        DataLoader(
            SlowFirstSample(delay=1.5),
            batch_size=4,
            sampler=[b * 100 + i for b in range(8) for i in range(4)],
            num_workers=2,
            persistent_workers=True,
            collate_fn=collate,
        )
    )
    iter(loader)
    time.sleep(0.1)
    assert _first_indices(iter(loader), 8) == [b * 100 for b in range(8)]
    loader.close()
    shut_workers_down(loader)


def test_dropping_a_pass_stops_its_threads_and_workers():
    def gathering():
        return sum(thread.name.startswith('slot-') for thread in threading.enumerate())

    threads, children = gathering(), len(multiprocessing.active_children())
    loader = SlotDataLoader(_numbered_loader(collate))
    iterator = iter(loader)
    next(iterator)
    del iterator
    gc.collect()
    for _ in range(100):  # the thread stops at its next check, the workers with it
        if gathering() == threads and len(multiprocessing.active_children()) == children:
            break
        time.sleep(0.1)
    assert gathering() == threads
    assert len(multiprocessing.active_children()) == children


class MixedFrames(Frames):
    """The first scene read from h5, the others from mp4 (the protocol's layouts alternate)."""

    def get_data_info(self, index):
        info = super().get_data_info(index)
        info['cams']['Camera_0']['img_key'] = 'rgb/rgb_00000.jpg' if index < 20 else 0
        return info


def test_slot_workers_for_a_mix_whose_first_scene_is_h5():
    mixed = with_slot_workers(_loader(dataset=MixedFrames()))
    assert isinstance(mixed, SlotDataLoader)


def test_the_loop_chooses_slot_workers_for_videos_only():
    h5 = _loader(dataset=Frames(img_key='rgb/rgb_00000.jpg'))
    assert with_slot_workers(h5) is h5
    videos = with_slot_workers(_loader(dataset=Frames(img_key=0)))
    assert isinstance(videos, SlotDataLoader)
    assert videos.num_workers == 2
    assert isinstance(with_slot_workers(_loader(), True), SlotDataLoader)
    videos_off = _loader(dataset=Frames(img_key=0))
    assert with_slot_workers(videos_off, False) is videos_off
    one_worker = _loader(dataset=Frames(img_key=0), workers=1)
    assert with_slot_workers(one_worker, True) is one_worker  # reads in order already
    one_slot = _loader(batch=1, dataset=Frames(img_key=0))
    assert with_slot_workers(one_slot, True) is one_slot  # would idle a worker
    with pytest.raises(ValueError, match='slot_workers'):
        with_slot_workers(_loader(), 'yes')
