"""Run a block in float32 inside an autocast region.

Under bf16 or fp16 autocast every linear layer casts its float32 weight, bias and often its
input (a LayerNorm's output is float32) to the half type, and the backward casts every
gradient back: on the small outside-in head that is about 760 of a training step's 4,200
operations, each one kernel launch, for layers whose matrix products are too small for the
half type to pay (96 channels). Run in float32, those layers launch no casts, and the
deformable aggregation's float32 backward is faster than its half one with float32 sums
(docs/performance.md). The backbone and neck, whose convolutions the half type does speed
up, stay under autocast.
"""

import functools
from collections.abc import Callable

import torch
from torch.utils._pytree import tree_map


def _to_float32(value):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.float()
    return value


def float32_under_autocast(method: Callable) -> Callable:
    """Decorate a module's method: where the module's ``float32_under_autocast`` attribute is
    set and autocast is on for the device of the module's first parameter, the method runs
    with autocast off and its floating-point tensor arguments (also inside lists, tuples and
    dicts) in float32. Otherwise it runs as it is."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not getattr(self, 'float32_under_autocast', False):
            return method(self, *args, **kwargs)
        device_type = _device_type(self)
        if not torch.is_autocast_enabled(device_type):
            return method(self, *args, **kwargs)
        args, kwargs = tree_map(_to_float32, (args, kwargs))
        with torch.autocast(device_type, enabled=False):
            return method(self, *args, **kwargs)

    return wrapper


def _device_type(module: torch.nn.Module) -> str:
    for tensor in module.parameters():
        return tensor.device.type
    for tensor in module.buffers():
        return tensor.device.type
    return 'cpu'


__all__ = ['float32_under_autocast']
