"""Settings that change what a checkpoint's weights mean without changing their shapes.

A strict load catches a checkpoint of another architecture, but not one trained under
another meaning of the same tensors: a refinement whose velocity output was a displacement
per frame (``velocity_per_second=False``) loads into a config that reads it in m/s and
reports velocities 30 times too small at 30 FPS; other image normalisation constants shift
every input. mmengine stores the training config in each checkpoint's ``meta['cfg']``; the
settings below are compared with it before any work starts. ``load_fitting_checkpoint`` is
the one way the tools load a checkpoint for inference: strictly, then this comparison;
``check_training_checkpoint`` makes the same comparison for the checkpoint a training run
resumes from or starts from (``load_from``), before the Runner is built.
"""

import os
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import CheckpointLoader, find_latest_checkpoint, load_checkpoint
from torch import nn

# dotted key -> the value a config without the key means
WEIGHT_MEANING = {
    'model.head.refine_layer.velocity_per_second': False,
    'model.data_preprocessor.mean': None,
    'model.data_preprocessor.std': None,
}


def _lookup(cfg: dict, dotted: str, default):
    node = cfg
    for key in dotted.split('.'):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a == b
    return np.shape(a) == np.shape(b) and np.allclose(np.asarray(a, float), np.asarray(b, float))


def load_fitting_checkpoint(model: nn.Module, checkpoint: str | os.PathLike, cfg: Config,
                            owner: str = '') -> dict:  # fmt: skip
    """Load ``checkpoint`` into ``model`` strictly, then ``check_checkpoint_settings``; a
    mismatch of either kind is a ``ValueError`` (prefixed ``owner: `` where given) before any
    work. Returns the loaded checkpoint."""
    prefix = f'{owner}: ' if owner else ''
    try:
        loaded = load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True,
                                 logger=MMLogger.get_current_instance())  # fmt: skip
    except (RuntimeError, KeyError) as error:
        raise ValueError(f'{prefix}checkpoint {checkpoint} does not fit the model of '
                         f'{cfg.filename}: {str(error)[:600]}') from error  # fmt: skip
    check_checkpoint_settings(loaded.get('meta') or {}, cfg, checkpoint)
    return loaded


def check_checkpoint_settings(meta: dict, cfg: Config, checkpoint: str | os.PathLike) -> None:
    """Raise ``ValueError`` naming the setting where the training config in a checkpoint's
    ``meta`` and ``cfg`` disagree on one of ``WEIGHT_MEANING``. A checkpoint without a
    readable config (not written by mmengine's Runner, or one whose custom modules are absent
    here) is not compared, and the log says so."""
    logger = MMLogger.get_current_instance()
    text = meta.get('cfg')
    if not text:
        logger.warning(f'{checkpoint}: no training config in its meta; the settings that '
                       'change what its weights mean are not compared with the config')  # fmt: skip
        return
    try:
        trained = Config.fromstring(text, '.py').to_dict()
    except Exception as error:  # a config is Python: any error of its own can come out
        reason = f'{type(error).__name__}: {str(error)[:200]}'
        logger.warning(f'{checkpoint}: its training config cannot be read here ({reason}); '
                       'settings not compared')  # fmt: skip
        return
    current = cfg.to_dict()
    for key, default in WEIGHT_MEANING.items():
        then, now = _lookup(trained, key, default), _lookup(current, key, default)
        if not _same(then, now):
            name = Path(str(cfg.filename)).name if cfg.filename else 'the config'
            raise ValueError(
                f'checkpoint {checkpoint} was trained with {key}={then!r}, but {name} sets '
                f'{now!r}: the weights mean something else under it. Pass --cfg-options '
                f'{key}={then!r} (or use the config it was trained with)'
            )


def training_checkpoint(cfg: Config) -> str | None:
    """The checkpoint mmengine's Runner will load when it trains with ``cfg``: the one to
    resume from (given, or with ``resume=True`` alone the work dir's latest), else
    ``load_from``; None when it starts from scratch."""
    if cfg.get('resume') and not cfg.get('load_from'):
        return find_latest_checkpoint(cfg.work_dir) if cfg.get('work_dir') else None
    return cfg.get('load_from') or None


def check_training_checkpoint(cfg: Config) -> None:
    """``check_checkpoint_settings`` for ``training_checkpoint(cfg)``: resuming or fine-tuning
    weights trained under another meaning is refused before the Runner starts (mmengine
    would load them, shapes being equal, and train on)."""
    path = training_checkpoint(cfg)
    if path is None:
        return
    if os.path.isfile(path):
        # Memory-mapped: only the meta is read here; the Runner reads the weights once.
        checkpoint = torch.load(path, map_location='cpu', mmap=True)
    else:  # a URL or another mmengine backend
        checkpoint = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    check_checkpoint_settings(meta or {}, cfg, path)
