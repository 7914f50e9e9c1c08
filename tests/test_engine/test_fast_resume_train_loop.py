"""FastResumeIterBasedTrainLoop's resume: the sampler skips, and the batches that follow
equal those mmengine's replay gives, across epoch boundaries (a real DataLoader with
worker processes, mmengine's infinite iterator as the reference, the loop's PassIterator);
PassIterator gives mmengine's batches and epochs without its sleep at a pass's end. The
loop itself runs under the real Runner in tests/test_apis/test_tracker.py (a killed and
resumed training)."""

import time

import pytest
import torch
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader, SequentialSampler

from mmsparse4d.datasets.samplers import SequentialGroupSampler
from mmsparse4d.engine.loops import fast_forward
from mmsparse4d.engine.loops.fast_resume_train_loop import PassIterator
from tests.conftest import shut_workers_down


class Frames:
    """Three scenes of 20 frames; a sample is its own index."""

    def __len__(self):
        return 60

    def get_data_info(self, index):
        return dict(scene_name=f's{index // 20}', frame_idx=index % 20)

    def __getitem__(self, index):
        return index


def _loader(sampler_cls=SequentialGroupSampler, workers=2):
    dataset = Frames()
    if sampler_cls is SequentialGroupSampler:
        sampler = SequentialGroupSampler(
            dataset, batch_size=4, skip_prob=0.3, split_num=2, rank=0, world_size=1, seed=7
        )
    else:
        sampler = sampler_cls(dataset)
    return DataLoader(
        dataset, batch_size=4, sampler=sampler, num_workers=workers, persistent_workers=workers > 0
    )


def _next_batches(iterator, count):
    return [next(iterator).tolist() for _ in range(count)]


@pytest.mark.filterwarnings('ignore:.*This DataLoader will create')
# 15 batches per pass; mmengine's iterator sleeps 2 s at the end of each pass, so a few
# cases, one with worker processes.
@pytest.mark.parametrize('trained, workers', [(3, 0), (15, 0), (17, 2)])
def test_fast_forward_gives_the_batches_replay_gives(trained, workers):
    replayed = _InfiniteDataloaderIterator(_loader(workers=workers))
    for _ in range(trained):
        next(replayed)
    loader = _loader(workers=workers)
    assert len(loader) == 15
    skipped = PassIterator.taking_over(_InfiniteDataloaderIterator(loader))  # as the loop does
    next(skipped)  # the loop's iterator has started its workers before the resume
    assert fast_forward(skipped, loader, trained)
    assert _next_batches(skipped, 15) == _next_batches(replayed, 15)  # into the next pass
    assert skipped._epoch == replayed._epoch
    shut_workers_down(skipped, replayed)


@pytest.mark.filterwarnings('ignore:.*This DataLoader will create')
def test_the_loops_iterator_gives_mmengines_batches_and_epochs_without_its_sleep(
    caplog_mm, monkeypatch
):
    reference = _InfiniteDataloaderIterator(_loader(workers=0))
    expected = [_next_batches(reference, 17), reference._epoch]
    loader = _loader(workers=2)
    passes = PassIterator.taking_over(_InfiniteDataloaderIterator(loader))
    slept = []
    monkeypatch.setattr(time, 'sleep', slept.append)  # mmengine sleeps 2 s at a pass's end
    assert [_next_batches(passes, 17), passes._epoch] == expected  # one pass end crossed
    assert slept == []
    assert loader.sampler.epoch == 1 and 'Data pass 2 starts (sampler epoch 1)' in caplog_mm
    assert _next_batches(passes, 30)[-1] == _next_batches(reference, 30)[-1]
    shut_workers_down(passes)


def test_a_sampler_that_cannot_skip_is_left_to_replay():
    loader = _loader(SequentialSampler, workers=0)
    iterator = _InfiniteDataloaderIterator(loader)
    assert not fast_forward(iterator, loader, 3)
    assert next(iterator).tolist() == [0, 1, 2, 3]  # untouched: the loop replays instead
    assert torch.is_tensor(next(iterator))


def test_a_sampler_batching_otherwise_than_the_loader_is_left_to_replay():
    # Its batches are not the loader's: skipping its batches would land elsewhere.
    sampler = _loader(workers=0).sampler
    loader = DataLoader(Frames(), batch_size=8, sampler=sampler)
    iterator = _InfiniteDataloaderIterator(loader)
    first = next(iterator).tolist()
    iterator = _InfiniteDataloaderIterator(loader)
    assert not fast_forward(iterator, loader, 5)
    assert next(iterator).tolist() == first
