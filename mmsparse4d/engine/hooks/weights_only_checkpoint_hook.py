"""Make mmengine checkpoints loadable with ``torch.load(weights_only=True)``.

torch >= 2.6 loads checkpoints weights-only by default, and mmengine 0.10 stores its
message hub (``HistoryBuffer`` objects, numpy scalars) in every checkpoint, which that
loader refuses. This hook rewrites those entries into plain containers before saving,
checks that nothing else unsafe remains (naming the key if something does), and restores
the ``HistoryBuffer`` objects after loading so that ``--resume`` continues exactly.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer

from ...registry import HOOKS

_BUFFER_TAG = '__history_buffer__'
_SAFE_LEAVES = (str, int, float, bool, bytes, type(None), torch.Tensor, torch.dtype, torch.device)


def _to_plain(value: Any) -> Any:
    """Recursively replace numpy and HistoryBuffer values by builtin containers."""
    if isinstance(value, HistoryBuffer):
        log_history, count_history = value.data
        return {
            _BUFFER_TAG: True,
            'log_history': log_history.tolist(),
            'count_history': count_history.tolist(),
            'max_length': value.max_length,
        }
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return type(value)((key, _to_plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return type(value)(_to_plain(item) for item in value)
    return value


def _check_weights_only_safe(value: Any, path: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_weights_only_safe(item, f'{path}[{key!r}]')
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_weights_only_safe(item, f'{path}[{index}]')
    elif not isinstance(value, _SAFE_LEAVES):
        raise TypeError(
            f'checkpoint entry {path} holds a {type(value).__module__}.{type(value).__name__}, '
            'which torch.load(weights_only=True) cannot read; store it as builtin types'
        )


def _restore_buffers(value: Any) -> Any:
    if isinstance(value, Mapping):
        if value.get(_BUFFER_TAG, False):
            return HistoryBuffer(value['log_history'], value['count_history'], value['max_length'])
        return type(value)((key, _restore_buffers(item)) for key, item in value.items())
    return value


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Write checkpoints that torch's weights-only loader accepts, and read them back."""

    priority = 'VERY_LOW'  # after every other hook has added its entries

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = _to_plain(checkpoint[key])
        _check_weights_only_safe(checkpoint, 'checkpoint')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = _restore_buffers(checkpoint['message_hub'])
