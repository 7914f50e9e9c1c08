"""Which synthetic scenes train, which choose, which test: seed sets that never mix.

A scene is a seed (``write_synthetic_scene``). Three disjoint sets of seeds:

- training: ``TRAINING_SEEDS``, 0-99 and, after the validation seeds, 108-207
  (``tools/make_protocol_data.py`` takes ``--training`` of them from ``--first-training``);
- validation: ``VALIDATION_SEEDS``, the scenes every choice is made on (recipe, schedule,
  post-processing); Warehouse_100 of the recipe is one of them;
- test: seeds drawn fresh at evaluation time (``draw_fresh_seeds``) from
  ``[FRESH_SEED_START, FRESH_SEED_END)``, so that no number reported as a test result can
  have been tuned to. A list of test seeds may be given to reproduce a run; it must not
  hold a training or validation seed.

Every scene's layout (cameras, objects, video format) follows from its seed through
``scene_spec``: 4-12 cameras, 8-25 objects, h5 for even seeds and mp4 for odd ones.
"""

import secrets
from dataclasses import dataclass

import numpy as np

# Two ranges around the validation seeds, so that every seed keeps its role as the set grows.
TRAINING_SEEDS = (*range(0, 100), *range(108, 208))
VALIDATION_SEEDS = range(100, 108)
FRESH_SEED_START = 1_000_000
FRESH_SEED_END = 2**31 - 1
CAMERA_RANGE = (4, 12)
OBJECT_RANGE = (8, 25)
# The spec draws from its own stream of the seed, so it never shifts the scene's own draws.
_SPEC_STREAM = 0x5CE4E


@dataclass(frozen=True)
class SceneSpec:
    """One evaluation scene: ``write_synthetic_scene`` arguments and the folder name."""

    seed: int
    num_cameras: int
    num_objects: int
    rgb_format: str
    num_frames: int
    width: int
    height: int

    @property
    def name(self) -> str:
        return f'Warehouse_{self.seed:03d}'


def scene_spec(seed: int, num_frames: int = 300, size: tuple[int, int] = (480, 270)) -> SceneSpec:
    """The layout of the scene of ``seed``: cameras in ``CAMERA_RANGE`` and objects in
    ``OBJECT_RANGE`` (uniform, inclusive), h5 video for even seeds and mp4 for odd ones."""
    rng = np.random.default_rng([seed, _SPEC_STREAM])
    cameras = int(rng.integers(CAMERA_RANGE[0], CAMERA_RANGE[1] + 1))
    objects = int(rng.integers(OBJECT_RANGE[0], OBJECT_RANGE[1] + 1))
    return SceneSpec(
        seed, cameras, objects, 'mp4' if seed % 2 else 'h5', num_frames, size[0], size[1]
    )


def training_seeds(count: int, first: int = 0) -> list[int]:
    """``count`` training seeds from the ``first``-th on (``first=100`` starts at seed 108)."""
    if not (count >= 1 and 0 <= first <= len(TRAINING_SEEDS) - count):
        raise ValueError(
            f'training_seeds: {count} from the {first}-th: the protocol has '
            f'{len(TRAINING_SEEDS)} training seeds'
        )
    return list(TRAINING_SEEDS[first : first + count])


def seed_role(seed: int) -> str:
    """``'training'``, ``'validation'``, ``'fresh'`` (the test range) or ``'other'``."""
    if seed in TRAINING_SEEDS:
        return 'training'
    if seed in VALIDATION_SEEDS:
        return 'validation'
    if FRESH_SEED_START <= seed < FRESH_SEED_END:
        return 'fresh'
    return 'other'


def draw_fresh_seeds(count: int) -> list[int]:
    """``count`` distinct test seeds from the operating system's entropy, half of them even
    (h5) and half odd (mp4), in the fresh range."""
    if count < 1:
        raise ValueError(f'draw_fresh_seeds: count must be >= 1, got {count}')
    seeds: list[int] = []
    while len(seeds) < count:
        half = FRESH_SEED_START // 2 + secrets.randbelow((FRESH_SEED_END - FRESH_SEED_START) // 2)
        seed = 2 * half + len(seeds) % 2
        if seed not in seeds:
            seeds.append(seed)
    return seeds
