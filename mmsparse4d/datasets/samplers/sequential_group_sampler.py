"""Sequence-aware sampling for a recurrent (instance-bank) model.

Every batch slot walks its own sub-sequence in time order, so consecutive batches give
each slot the next frame of the same scene; sub-sequences are drawn in a seeded random
order per slot, each at a frame rate drawn from ``fps_choices`` and with frames randomly
skipped (time gaps the instance bank must handle). Distributed-aware: the slots are
``batch_size x world_size`` and each rank owns its ``batch_size`` of them.
"""

import math
from collections.abc import Iterator, Sequence

import numpy as np
from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from ...registry import DATA_SAMPLERS


def build_sequences(dataset, split_num: int = 1) -> list[list[int]]:
    """Dataset indices grouped by scene in frame order, each split into ``split_num``
    contiguous sub-sequences (empty ones dropped)."""
    scenes: dict[str, list[tuple[int, int]]] = {}
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        scenes.setdefault(info['scene_name'], []).append((info['frame_idx'], index))
    sequences = []
    for scene in sorted(scenes):
        ordered = [index for _, index in sorted(scenes[scene])]
        for part in np.array_split(np.array(ordered), split_num):
            if len(part):
                sequences.append(part.tolist())
    return sequences


@DATA_SAMPLERS.register_module()
class SequentialGroupSampler(Sampler):
    """Args:
    dataset: has ``get_data_info(i)`` with ``scene_name`` and ``frame_idx``.
    batch_size: per rank; must equal the data loader's batch size.
    seed: the base seed (mmengine passes the experiment's).
    native_fps: frame rate of the data.
    fps_choices: frame rates to draw per sub-sequence (each must divide native_fps);
        None keeps every frame.
    skip_prob: probability of dropping each further frame (a time gap).
    split_num: sub-sequences per scene.
    rank, world_size: default to the process group's.
    """

    # Yields batch after batch, slot b at position b of each (``SlotDataLoader`` relies on it).
    walks_slots = True

    def __init__(
        self,
        dataset,
        batch_size: int,
        seed: int | None = None,
        native_fps: float = 30,
        fps_choices: Sequence[float] | None = None,
        skip_prob: float = 0.0,
        split_num: int = 1,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        default_rank, default_world = get_dist_info()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.batch_size = batch_size
        self.seed = 0 if seed is None else int(seed)
        self.strides = [1]
        if fps_choices:
            self.strides = []
            for fps in fps_choices:
                stride = native_fps / fps
                if fps <= 0 or abs(stride - round(stride)) > 1e-6:
                    raise ValueError(f'fps_choices: {fps} does not divide native_fps {native_fps}')
                self.strides.append(int(round(stride)))
        if not 0 <= skip_prob < 1:
            raise ValueError(f'skip_prob must be in [0, 1), got {skip_prob}')
        self.skip_prob = skip_prob
        self.sequences = build_sequences(dataset, split_num)
        if not self.sequences:
            raise ValueError('SequentialGroupSampler: the dataset is empty')
        total_slots = batch_size * self.world_size
        # Every rank yields the same number of samples; about one pass over the data.
        self.samples_per_slot = max(1, math.ceil(len(dataset) / total_slots))
        self.epoch = 0
        self._skip_batches = 0

    def _slot_stream(self, slot: int) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch, slot])
        while True:
            for sequence in rng.permutation(len(self.sequences)):
                frames = self.sequences[sequence]
                stride = int(rng.choice(self.strides))
                start = int(rng.integers(0, stride))
                for position, index in enumerate(frames[start::stride]):
                    if position and rng.random() < self.skip_prob:
                        continue
                    yield index

    def __iter__(self) -> Iterator[int]:
        slots = range(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        streams = [self._slot_stream(slot) for slot in slots]
        skip, self._skip_batches = self._skip_batches, 0
        for _ in range(skip):  # drawn, not yielded: the same streams from here on
            for stream in streams:
                next(stream)
        for _ in range(self.samples_per_slot - skip):
            for stream in streams:  # one batch: slot b at position b
                yield next(stream)

    def __len__(self) -> int:
        return self.samples_per_slot * self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def fast_forward(self, batches: int) -> None:
        """Start the next pass ``batches`` batches in, as if they had been drawn (a resumed
        run; ``FastResumeIterBasedTrainLoop``). Only the sampler's random draws are made."""
        if not 0 <= batches < self.samples_per_slot:
            raise ValueError(
                f'fast_forward: batches must be in [0, {self.samples_per_slot}) '
                f'(batches per pass), got {batches}'
            )
        self._skip_batches = batches
