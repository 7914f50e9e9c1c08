"""The sequence-aware sampler and random camera dropping."""

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from mmsparse4d.datasets.samplers import SequentialGroupSampler, build_sequences


class FakeSequences:
    """Frames of three scenes of different lengths, stored out of order."""

    def __init__(self):
        self.infos = [
            dict(scene_name=scene, frame_idx=frame)
            for scene, count in (('b', 40), ('a', 90), ('c', 31))
            for frame in range(count)
        ][::-1]

    def __len__(self):
        return len(self.infos)

    def get_data_info(self, index):
        return self.infos[index]


def slots_of(sampler, batch_size):
    indices = list(sampler)
    return [indices[b::batch_size] for b in range(batch_size)]


def test_sequences_are_split_in_frame_order():
    dataset = FakeSequences()
    sequences = build_sequences(dataset, split_num=2)
    assert len(sequences) == 6
    for sequence in sequences:
        infos = [dataset.get_data_info(i) for i in sequence]
        assert len({i['scene_name'] for i in infos}) == 1
        assert [i['frame_idx'] for i in infos] == sorted(i['frame_idx'] for i in infos)


def test_each_slot_walks_its_sequences_in_time_order():
    dataset = FakeSequences()
    sampler = SequentialGroupSampler(
        dataset, batch_size=3, seed=1, split_num=2, rank=0, world_size=1
    )
    assert len(sampler) == 3 * 54
    for slot in slots_of(sampler, 3):
        infos = [dataset.get_data_info(i) for i in slot]
        for before, after in zip(infos, infos[1:], strict=False):
            if (
                before['scene_name'] == after['scene_name']
                and after['frame_idx'] > before['frame_idx']
            ):
                assert after['frame_idx'] - before['frame_idx'] == 1  # no fps change, no skip


def test_fps_choices_and_skips_make_strides_and_gaps():
    dataset = FakeSequences()
    sampler = SequentialGroupSampler(
        dataset,
        batch_size=2,
        seed=3,
        native_fps=30,
        fps_choices=[30, 10, 5],
        skip_prob=0.2,
        rank=0,
        world_size=1,
    )
    steps = set()
    for slot in slots_of(sampler, 2):
        infos = [dataset.get_data_info(i) for i in slot]
        for before, after in zip(infos, infos[1:], strict=False):
            if (
                before['scene_name'] == after['scene_name']
                and after['frame_idx'] > before['frame_idx']
            ):
                steps.add(after['frame_idx'] - before['frame_idx'])
    assert {1, 3, 6} <= steps  # strides 1, 3, 6 and their skipped multiples
    assert all(step % 1 == 0 for step in steps) and max(steps) > 6
    with pytest.raises(ValueError, match='does not divide native_fps'):
        SequentialGroupSampler(dataset, 2, fps_choices=[7], rank=0, world_size=1)


def test_ranks_get_different_slots_and_epochs_reshuffle():
    dataset = FakeSequences()
    rank0 = SequentialGroupSampler(dataset, 2, seed=5, split_num=3, rank=0, world_size=2)
    rank1 = SequentialGroupSampler(dataset, 2, seed=5, split_num=3, rank=1, world_size=2)
    assert len(rank0) == len(rank1)
    assert list(rank0) != list(rank1)
    assert list(rank0) == list(
        SequentialGroupSampler(dataset, 2, seed=5, split_num=3, rank=0, world_size=2)
    )
    first = list(rank0)
    rank0.set_epoch(1)
    assert list(rank0) != first


def test_the_ranks_slots_are_one_process_slots_at_the_global_batch():
    # Data parallelism at 2 x 3 samples sees what one process at 6 sees: rank r's batch is
    # slots 3r to 3r + 2 of the one-process batch, every step.
    dataset = FakeSequences()
    options = dict(seed=3, split_num=2, fps_choices=(30, 15, 10), skip_prob=0.1)
    alone = list(SequentialGroupSampler(dataset, 6, rank=0, world_size=1, **options))
    ranks = [
        list(SequentialGroupSampler(dataset, 3, rank=rank, world_size=2, **options))
        for rank in range(2)
    ]
    assert len(ranks[0]) * 2 == len(alone)
    for step in range(len(alone) // 6):
        together = ranks[0][3 * step : 3 * step + 3] + ranks[1][3 * step : 3 * step + 3]
        assert together == alone[6 * step : 6 * step + 6]


def test_works_in_a_data_loader(converted):
    from mmsparse4d.datasets import OVPKLDataset

    result, data_root = converted
    dataset = OVPKLDataset(ann_file=str(result.pickles[0].parent), data_root=str(data_root))
    sampler = SequentialGroupSampler(dataset, batch_size=2, seed=0, rank=0, world_size=1)
    loader = torch.utils.data.DataLoader(list(range(len(dataset))), batch_size=2, sampler=sampler)
    batches = [batch.tolist() for batch in loader]
    assert len(batches) == len(sampler) // 2
    tokens = [[dataset[i]['token'] for i in batch] for batch in batches[:3]]
    assert all(len({t.split('__')[0] for t in slot}) == 1 for slot in zip(*tokens, strict=True))


def test_random_camera_drop_keeps_order_and_visibility_columns(converted):
    from mmsparse4d.datasets import OVPKLDataset

    np.random.seed(0)
    result, data_root = converted
    info = OVPKLDataset(ann_file=str(result.pickles[1]), data_root=str(data_root))[4]
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        drop = Compose([dict(type='RandomCameraDrop', min_cameras=1, prob=1.0)])
    seen = set()
    for _ in range(20):
        results = drop(dict(info, cams=dict(info['cams'])))
        names = list(results['cams'])
        assert 1 <= len(names) <= 3 and names == [n for n in info['cams'] if n in names]
        columns = [list(info['cams']).index(n) for n in names]
        np.testing.assert_array_equal(results['gt_visibility'], info['gt_visibility'][:, columns])
        seen.add(len(names))
    assert len(seen) > 1


def test_fast_forward_starts_the_next_pass_where_skipped_batches_end():
    sampler = SequentialGroupSampler(
        FakeSequences(),
        batch_size=4,
        fps_choices=[30, 15],
        skip_prob=0.2,
        split_num=2,
        rank=0,
        world_size=1,
    )
    sampler.set_epoch(3)
    full = list(sampler)
    sampler.fast_forward(5)
    assert list(sampler) == full[20:]
    assert list(sampler) == full  # only the next pass skips
    with pytest.raises(ValueError, match=r'batches must be in \[0, 41\)'):
        sampler.fast_forward(41)
