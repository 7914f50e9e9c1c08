"""Evaluation sampling for a recurrent model: every frame exactly once, scenes whole.

Tracking carries state from frame to frame, so a scene cannot be split between ranks. Each
scene goes whole to one rank (largest scenes first, each to the rank with the fewest frames
so far) and every rank walks its scenes in frame order. Ranks may get different numbers of
frames: mmengine's ``collect_results`` joins unequal parts without padding, so every frame
is evaluated once (the training sampler, which draws random sub-sequences per slot, would
give two ranks overlapping frames and miss others).
"""

from collections.abc import Iterator

from mmengine.dist import get_dist_info
from torch.utils.data import Sampler

from ...registry import DATA_SAMPLERS
from .sequential_group_sampler import build_sequences


@DATA_SAMPLERS.register_module()
class SequenceTestSampler(Sampler):
    """Args:
    dataset: has ``get_data_info(i)`` with ``scene_name`` and ``frame_idx``.
    rank, world_size: default to the process group's.
    batch_size, seed: accepted for config compatibility; frames are yielded one by one
        and nothing is random.
    """

    def __init__(
        self,
        dataset,
        rank: int | None = None,
        world_size: int | None = None,
        batch_size: int = 1,
        seed: int | None = None,
    ):
        default_rank, default_world = get_dist_info()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if batch_size != 1:
            raise ValueError(
                f'SequenceTestSampler: evaluation batches hold one frame, got batch_size '
                f'{batch_size} (set the val/test dataloader batch_size to 1)'
            )
        scenes = build_sequences(dataset, split_num=1)
        if not scenes:
            raise ValueError('SequenceTestSampler: the dataset is empty')
        owned: list[list[list[int]]] = [[] for _ in range(self.world_size)]
        frames = [0] * self.world_size
        for scene in sorted(scenes, key=len, reverse=True):  # stable: ties keep scene order
            rank = frames.index(min(frames))
            owned[rank].append(scene)
            frames[rank] += len(scene)
        # Each rank visits its scenes in scene-name order.
        mine = sorted(owned[self.rank], key=scenes.index)
        self.indices = [index for scene in mine for index in scene]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """Nothing depends on the epoch."""
