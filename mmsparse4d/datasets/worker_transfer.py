"""How data workers hand tensors to the training process: small ones by value.

torch's data-loader workers send every CPU tensor through shared memory: the worker copies
it into a new shared segment, and the training process receives the segment's file
descriptor over a socket to the worker's resource-sharer thread, one connection and
authentication handshake per tensor (about 0.3 ms of the receiver's CPU on the 2-core
machine, more when the worker is busy). A sample carries a few large tensors (the
images, the depth targets) and many small ones (projection matrices, image sizes, focal
lengths, warps, colour parameters, the ground truth's boxes, labels and ids): on the H100's
host the batch-16 training loop received 18,592 tensors in 80 iterations this way, 21 s of
rebuilding them in the training process (cProfile, slot workers; ``docs/performance.md``).

``send_small_tensors_by_value`` (run in a worker) registers a reduction for plain CPU
tensors of at most ``SMALL_TENSOR_BYTES``: they travel pickled with the rest of the sample,
through the worker's result pipe, and arrive as ordinary tensors (the same dtype, shape and
values; their own storage, so two small tensors that shared one storage in the worker no
longer do). Larger tensors, and any tensor that needs gradients or is not a plain dense CPU
tensor, go through shared memory as before.

``with_small_tensors_by_value(loader)`` adds it to a ``DataLoader``'s ``worker_init_fn``;
``FastResumeIterBasedTrainLoop`` applies it (``small_tensors_by_value``, on by default,
logged).
"""

import functools
from multiprocessing.reduction import ForkingPickler

import torch
from mmengine.logging import print_log
from torch.multiprocessing.reductions import reduce_tensor

# Up to this many bytes a tensor travels by value: a 256 KiB copy through the result
# pipe costs well under the ~0.3 ms handshake of a shared segment's descriptor.
SMALL_TENSOR_BYTES = 256 * 1024


def _tensor_from_bytes(data: bytes, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    """The receiving end: a tensor of ``dtype`` and ``shape`` over a copy of ``data``."""
    if not data:
        return torch.empty(shape, dtype=dtype)
    flat = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return flat.view(dtype).reshape(shape)


def travels_by_value(tensor: torch.Tensor, max_bytes: int = SMALL_TENSOR_BYTES) -> bool:
    """Whether ``tensor`` is a plain dense CPU tensor without gradients of at most
    ``max_bytes`` bytes (its elements, not its storage). Nested tensors (strided too) go
    through torch's own reduction."""
    return (
        type(tensor) is torch.Tensor
        and tensor.device.type == 'cpu'
        and tensor.layout == torch.strided
        and not tensor.is_nested
        and not tensor.requires_grad
        and not tensor.is_quantized
        and not tensor.is_conj()
        and not tensor.is_neg()
        and tensor.numel() * tensor.element_size() <= max_bytes
    )


def reduce_small_tensor_by_value(tensor: torch.Tensor):
    """``ForkingPickler`` reduction: small tensors by value (module docstring), others as
    torch reduces them (shared memory)."""
    if not travels_by_value(tensor):
        return reduce_tensor(tensor)
    data = tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return _tensor_from_bytes, (data, tensor.dtype, tuple(tensor.shape))


def send_small_tensors_by_value(worker_id: int | None = None) -> None:
    """In this process (a data worker), send small tensors by value from now on. Takes
    (and ignores) the worker id so that it can serve as a ``worker_init_fn``."""
    ForkingPickler.register(torch.Tensor, reduce_small_tensor_by_value)


def _chained_worker_init(worker_id: int, first=None) -> None:
    send_small_tensors_by_value(worker_id)
    if first is not None:
        first(worker_id)


def with_small_tensors_by_value(loader, enabled: bool = True):
    """``loader`` (a ``DataLoader``) whose workers send small tensors by value, ahead of its
    own ``worker_init_fn``; the choice is logged. Returns the loader (changed in place;
    a loader without workers, whose samples never cross processes, is left as it is)."""
    if not enabled:
        print_log(
            'small_tensors_by_value=False: the data workers send every tensor through '
            'shared memory',
            logger='current',
        )
        return loader
    if getattr(loader, 'num_workers', 0) < 1:
        return loader
    first = loader.worker_init_fn
    if isinstance(first, functools.partial) and first.func is _chained_worker_init:
        return loader  # already chained
    loader.worker_init_fn = functools.partial(_chained_worker_init, first=first)
    print_log(
        f'small_tensors_by_value: the data workers send tensors of at most '
        f'{SMALL_TENSOR_BYTES // 1024} KiB by value, larger ones through shared memory',
        logger='current',
    )
    return loader
