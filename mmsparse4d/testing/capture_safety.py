"""Finding what would break a CUDA graph capture, on any device (the test suite's CPU).

A captured frame may neither wait for the device (``.item()``, ``bool(tensor)``,
``nonzero``, boolean-mask indexing: their result sizes live on the device) nor copy from
the host (``torch.tensor(...)`` and index lists, which PyTorch turns into host tensors
moved to the device on every call). Both show up in the dispatcher whatever the device:
the first as ``_local_scalar_dense`` or an op whose output size depends on values, the
second as ``lift_fresh``. ``capture_hazards`` runs a function under a dispatch mode that
records them.

Not visible this way: ``.tolist()``, ``.cpu()`` and ``.numpy()`` of a CPU tensor and
``cpu_tensor.to(device)`` (no dispatch on a CPU; each is a wait or a copy on a GPU), and
what a custom operator's kernel does inside. The CUDA captures themselves are tested on the
GPU machines.
"""

from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Ops that read device values on the host (output sizes or Python scalars).
SYNCHRONISING = (
    'aten._local_scalar_dense',
    'aten.nonzero',
    'aten.masked_select',
    'aten.unique',
    'aten._unique2',
    'aten.unique_dim',
    'aten.unique_consecutive',
    'aten.repeat_interleave.Tensor',
    'aten.equal',
    'aten.bincount',
    'aten.is_nonzero',
)
# Indexing ops whose boolean indices become a value-dependent number of positions.
INDEXING = ('aten.index.Tensor', 'aten.index_put', 'aten._index_put_impl')
# A tensor made from Python data inside the function: a host-to-device copy on a GPU.
FROM_HOST = ('aten.lift_fresh',)


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.hazards: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)  # e.g. 'aten.nonzero.default'
        if name.startswith(SYNCHRONISING):
            self.hazards.append(f'{func}: waits for the device (value-dependent size or scalar)')
        elif name.startswith(FROM_HOST):
            self.hazards.append(f'{func}: a tensor made from host data inside the frame')
        elif name.startswith(INDEXING) and any(
            index is not None and index.dtype in (torch.bool, torch.uint8) for index in args[1]
        ):
            self.hazards.append(f'{func}: boolean-mask indexing (value-dependent size)')
        return func(*args, **(kwargs or {}))


def capture_hazards(function: Callable, *args, **kwargs) -> list[str]:
    """Calls ``function(*args, **kwargs)`` once and returns what in it would stop a CUDA
    graph capture (empty: none), one line per occurrence. Call it after a warm-up call, as
    a capture follows warm-up (caches filled on the first call are not hazards)."""
    recorder = _Recorder()
    with torch.no_grad(), recorder:
        function(*args, **kwargs)
    return recorder.hazards
