"""tools/analysis_tools/batch_shapes.py: the shapes of training steps and how often a step
meets one first."""

import numpy as np

from mmsparse4d.datasets.samplers import SequentialGroupSampler
from tools.analysis_tools.batch_shapes import (
    camera_drop,
    endless,
    first_sight_table,
    step_shapes,
    windows,
)


class Scenes:
    """Two scenes of 8 frames: 4 cameras and 3 boxes, then 6 cameras and 5 boxes."""

    def __len__(self):
        return 16

    def get_data_info(self, index):
        return dict(scene_name=f's{index // 8}', frame_idx=index % 8)


SAMPLES = {index: (4, 3) if index < 8 else (6, 5) for index in range(16)}


def test_without_a_camera_drop_the_shapes_follow_the_samples():
    sampler = SequentialGroupSampler(Scenes(), batch_size=2, rank=0, world_size=1, seed=3)
    indices = list(sampler)
    keep_all, rule = camera_drop([])
    assert rule == 'none'
    shapes = step_shapes(SAMPLES, iter(indices), 2, len(indices) // 2, keep_all)
    for step, shape in enumerate(shapes):
        batch = [SAMPLES[i] for i in indices[2 * step : 2 * step + 2]]
        assert shape == (
            sum(c for c, _ in batch),
            max(c for c, _ in batch),
            max(b for _, b in batch),
        )


def test_the_sampler_runs_pass_after_pass():
    sampler = SequentialGroupSampler(Scenes(), batch_size=2, rank=0, world_size=1, seed=3)
    one_pass = len(sampler)
    drawn = [index for _, index in zip(range(3 * one_pass), endless(sampler), strict=False)]
    assert len(drawn) == 3 * one_pass and sampler.epoch == 2
    assert drawn[:one_pass] != drawn[one_pass : 2 * one_pass]  # each pass its own draws


def test_the_camera_drop_keeps_between_its_least_count_and_all():
    """Drawn by the pipeline's own RandomCameraDrop, its defaults included."""
    np.random.seed(0)
    always, rule = camera_drop([dict(type='RandomCameraDrop', min_cameras=2, prob=1.0)])
    assert rule == 'probability 1, at least 2'
    kept = [always(6) for _ in range(200)]
    assert set(kept) == {2, 3, 4, 5, 6}
    assert always(2) == 2  # at the least count already
    never, _ = camera_drop([dict(type='RandomCameraDrop', min_cameras=2, prob=0.0)])
    assert never(6) == 6
    _, rule = camera_drop([dict(type='RandomCameraDrop'), dict(type='X')])
    assert rule == 'probability 0.5, at least 1'  # its defaults


def test_windows_and_the_first_sight_table():
    assert windows(600) == [(0, 50), (50, 100), (100, 200), (200, 400), (400, 600)]
    assert windows(30) == [(0, 30)]
    shapes = [(10, 4, 3)] * 50 + [(12, 6, 3)] + [(10, 4, 3)] * 49
    table = first_sight_table(shapes).splitlines()
    assert table[0] == (
        '| steps | new backbone images | new head cameras | new boxes per sample | any new |'
    )
    assert table[2] == '| 0-50 | 2% | 2% | 2% | 2% |'  # the first step sees all three
    assert table[3] == '| 50-100 | 2% | 2% | 0% | 2% |'
    assert table[-1] == '| distinct values | 2 | 2 | 1 | |'
