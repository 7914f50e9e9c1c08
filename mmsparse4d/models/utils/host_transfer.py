"""Host data to the device without draining the device's queue."""

import torch
from torch import Tensor


def to_device(value, device: torch.device | str, dtype: torch.dtype | None = None) -> Tensor:
    """``value`` (array, list, scalar or tensor) as a tensor on ``device``.

    ``torch.as_tensor(value, device=cuda)`` copies and then synchronises the stream, so every
    such call in a training step waits for all the kernels queued before it. A copy from
    pageable memory with ``non_blocking=True`` is staged by the driver before the call
    returns (the source may be reused at once) and PyTorch does not synchronise the stream
    after it (the driver may still wait while its staging buffer is full).
    """
    return torch.as_tensor(value, dtype=dtype).to(device, non_blocking=True)
