"""Evaluation sampling: every frame once, scenes whole, in frame order, on any world size."""

import pytest

from mmsparse4d.datasets.samplers import SequenceTestSampler
from tests.test_datasets.test_sequential_group_sampler import FakeSequences


def frames(dataset, indices):
    return [
        (dataset.get_data_info(i)['scene_name'], dataset.get_data_info(i)['frame_idx'])
        for i in indices
    ]


@pytest.mark.parametrize('world_size', [1, 2, 3, 4])
def test_every_frame_once_and_scenes_whole(world_size):
    dataset = FakeSequences()  # scenes a (90 frames), b (40), c (31)
    parts = [
        list(SequenceTestSampler(dataset, rank=r, world_size=world_size)) for r in range(world_size)
    ]
    everything = [i for part in parts for i in part]
    assert sorted(everything) == list(range(len(dataset)))
    for part in parts:
        seen = frames(dataset, part)
        scenes = [s for s, _ in seen]
        for scene in set(scenes):  # a scene is one contiguous run, in frame order
            run = [f for s, f in seen if s == scene]
            assert run == sorted(run) and len(run) == {'a': 90, 'b': 40, 'c': 31}[scene]
            first = scenes.index(scene)
            assert scenes[first : first + len(run)] == [scene] * len(run)
    if world_size == 2:  # largest first, to the emptiest rank: a | b + c
        assert [len(p) for p in parts] == [90, 71]
    if world_size == 4:
        assert [len(p) for p in parts] == [90, 40, 31, 0]


def test_one_rank_visits_scenes_in_name_order():
    dataset = FakeSequences()
    seen = frames(dataset, SequenceTestSampler(dataset, rank=0, world_size=1))
    assert [s for s, f in seen if f == 0] == ['a', 'b', 'c']


def test_batches_hold_one_frame():
    with pytest.raises(ValueError, match='batch_size'):
        SequenceTestSampler(FakeSequences(), rank=0, world_size=1, batch_size=2)
