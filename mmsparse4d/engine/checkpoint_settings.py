"""Settings that change what a checkpoint's weights mean without changing their shapes.

A strict load catches a checkpoint of another architecture, but not one trained under
another meaning of the same tensors: a refinement whose velocity output was a displacement
per frame (``velocity_per_second=False``) loads into a config that reads it in m/s and
reports velocities 30 times too small at 30 FPS; other image normalisation constants shift
every input. mmengine stores the training config in each checkpoint's ``meta['cfg']``; the
settings below are compared with it before any work starts.
"""

import os
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

# dotted key -> the value a config without the key means
WEIGHT_MEANING = {
    'model.head.refine_layer.velocity_per_second': False,
    'model.data_preprocessor.mean': None,
    'model.data_preprocessor.std': None,
}


def _lookup(cfg: Config, dotted: str, default):
    node = cfg.to_dict()
    for key in dotted.split('.'):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a == b
    return np.shape(a) == np.shape(b) and np.allclose(np.asarray(a, float), np.asarray(b, float))


def check_checkpoint_settings(checkpoint: str | os.PathLike, cfg: Config) -> None:
    """Raise ``ValueError`` naming the setting where the checkpoint's training config and
    ``cfg`` disagree on one of ``WEIGHT_MEANING``. A checkpoint without a readable config
    (not written by mmengine's Runner, or one whose custom modules are absent here) is not
    compared, and the log says so."""
    logger = MMLogger.get_current_instance()
    meta = torch.load(str(checkpoint), map_location='cpu').get('meta') or {}
    text = meta.get('cfg')
    if not text:
        logger.warning(f'{checkpoint}: no training config in its meta; the settings that '
                       'change what its weights mean are not compared with the config')  # fmt: skip
        return
    try:
        trained = Config.fromstring(text, '.py')
    except Exception as error:  # a config is Python: any error of its own can come out
        reason = f'{type(error).__name__}: {str(error)[:200]}'
        logger.warning(f'{checkpoint}: its training config cannot be read here ({reason}); '
                       'settings not compared')  # fmt: skip
        return
    for key, default in WEIGHT_MEANING.items():
        then, now = _lookup(trained, key, default), _lookup(cfg, key, default)
        if not _same(then, now):
            name = Path(str(cfg.filename)).name if cfg.filename else 'the config'
            raise ValueError(
                f'checkpoint {checkpoint} was trained with {key}={then!r}, but {name} sets '
                f'{now!r}: the weights mean something else under it. Pass --cfg-options '
                f'{key}={then!r} (or use the config it was trained with)'
            )
