"""Moving data between the host and the device without draining the device's queue."""

from collections.abc import Sequence

import torch
from torch import Tensor


def to_device(value, device: torch.device | str, dtype: torch.dtype | None = None) -> Tensor:
    """``value`` (array, list, scalar or tensor) as a tensor on ``device``, without waiting.

    ``torch.as_tensor(value, device=cuda)`` copies and then synchronises the stream, so every
    such call in a training or tracking step waits for all the kernels queued before it. Host
    data goes to a CUDA device from pinned memory with ``non_blocking=True`` instead (a copy
    from pageable memory may make the driver wait on the stream); the pinned staging tensor
    stays alive until the copy is done (PyTorch's pinned allocator records the stream).
    """
    tensor = torch.as_tensor(value, dtype=dtype)
    device = torch.device(device)
    if device.type != 'cuda' or tensor.device.type != 'cpu':
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def to_host_at_once(tensors: Sequence[Tensor]) -> list[Tensor]:
    """``tensors`` (on one device) on the host in a single transfer, each with its own shape
    and dtype: a device-to-host copy waits for the device, so one copy per tensor would wait
    once each. Values travel as float64, exact for float32/16 and integers below 2**53."""
    if not tensors:
        return []
    device = tensors[0].device
    flat = torch.cat([t.detach().to(device, torch.float64).flatten() for t in tensors]).cpu()
    parts = flat.split([t.numel() for t in tensors])
    return [part.reshape(t.shape).to(t.dtype) for part, t in zip(parts, tensors, strict=True)]
