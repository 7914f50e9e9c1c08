"""Means over the global batch when each process trains on a part of it."""

import torch.distributed as dist
from torch import Tensor


def global_mean_denominator(count: Tensor) -> Tensor:
    """The denominator of a mean over the whole batch, for a sum over this process's part.

    Data-parallel training averages the processes' gradients, so a loss ``local_sum / d``
    trains as the one-process mean over the global batch only if every process divides by
    ``d = max(sum over processes of count, 1) / world_size``. Dividing by the process's own
    count instead weights each sample by how many targets its process happened to hold.
    In one process (or without ``torch.distributed``) this is ``max(count, 1)``.

    Args:
        count: this process's number of averaged terms, any shape (one per loss group);
            on the device the process group communicates on.

    Returns:
        Tensor: float ``d``, the shape of ``count``.
    """
    count = count.float()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return count.clamp(min=1.0)
    total = count.clone()
    dist.all_reduce(total)
    return total.clamp(min=1.0) / dist.get_world_size()
