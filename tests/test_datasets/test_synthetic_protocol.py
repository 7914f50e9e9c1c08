import pytest

from mmsparse4d.datasets.synthetic.protocol import (
    CAMERA_RANGE,
    FRESH_SEED_END,
    FRESH_SEED_START,
    OBJECT_RANGE,
    TRAINING_SEEDS,
    VALIDATION_SEEDS,
    draw_fresh_seeds,
    scene_spec,
    seed_role,
    training_seeds,
)


def test_the_seed_sets_never_mix():
    assert not set(TRAINING_SEEDS) & set(VALIDATION_SEEDS)
    assert max(VALIDATION_SEEDS) < FRESH_SEED_START
    assert len(set(TRAINING_SEEDS)) == len(TRAINING_SEEDS) == 200
    roles = [seed_role(s) for s in (0, 99, 100, 107, 108, 207, 208, 900, FRESH_SEED_START)]
    assert roles == [
        'training',
        'training',
        'validation',
        'validation',
        'training',
        'training',
        'other',
        'other',
        'fresh',
    ]


def test_training_seeds_skip_the_validation_seeds():
    assert training_seeds(3) == [0, 1, 2]
    assert training_seeds(3, first=99) == [99, 108, 109]
    assert training_seeds(100, first=100) == list(range(108, 208))
    with pytest.raises(ValueError, match='2 from the 199-th: the protocol has 200 training seeds'):
        training_seeds(2, first=199)


def test_a_spec_follows_from_its_seed_and_stays_in_the_ranges():
    specs = [scene_spec(seed) for seed in range(FRESH_SEED_START, FRESH_SEED_START + 200)]
    assert specs == [scene_spec(seed) for seed in range(FRESH_SEED_START, FRESH_SEED_START + 200)]
    cameras = {s.num_cameras for s in specs}
    objects = {s.num_objects for s in specs}
    # 200 uniform draws cover both ends of each range (a miss has probability < 1e-7).
    assert min(cameras) == CAMERA_RANGE[0] and max(cameras) == CAMERA_RANGE[1]
    assert min(objects) == OBJECT_RANGE[0] and max(objects) == OBJECT_RANGE[1]
    assert {s.rgb_format for s in specs[::2]} == {'h5'} and {s.rgb_format for s in specs[1::2]} == {
        'mp4'
    }
    assert scene_spec(1_000_001, num_frames=30, size=(320, 180)).name == 'Warehouse_1000001'


def test_fresh_seeds_are_distinct_in_range_and_mix_both_video_formats():
    seeds = draw_fresh_seeds(6)
    assert len(set(seeds)) == 6
    assert all(FRESH_SEED_START <= s < FRESH_SEED_END for s in seeds)
    assert sorted(s % 2 for s in seeds) == [0, 0, 0, 1, 1, 1]
    assert draw_fresh_seeds(6) != seeds  # drawn at evaluation time (collision: ~1e-54)
    with pytest.raises(ValueError, match='count must be >= 1'):
        draw_fresh_seeds(0)
