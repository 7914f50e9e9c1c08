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

``use_checkpoint_anchors`` is the other setting a checkpoint provides: the instance bank's
anchors, so that testing needs no k-means anchor file from the training data.
"""

import os
import re
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import CheckpointLoader, find_latest_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch import nn

from ..utils.input_error import InputError
from .checkpoint_files import read_checkpoint

# The instance bank's learned anchors: where the config names their k-means file, and their
# key in a checkpoint's state_dict.
ANCHOR_SETTING = 'model.head.instance_bank.anchor'
ANCHOR_KEY = 'head.instance_bank.anchor'

# dotted key -> the value a config without the key means
WEIGHT_MEANING = {
    'model.head.refine_layer.velocity_per_second': False,
    # NVIDIA TAO's refinement: the velocity output replaces the anchor's (False).
    'model.head.refine_layer.velocity_residual': True,
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


def _one_line(text: str, limit: int = 600) -> str:
    """torch's state-dict errors span lines; the tools report one line."""
    return re.sub(r'\s*\n\s*', '; ', text.strip())[:limit]


def read_any_checkpoint(checkpoint: str | os.PathLike, mmap: bool = False) -> dict:
    """A local file through ``read_checkpoint`` (its errors name what the file is), a URL or
    other mmengine backend through mmengine's loader."""
    if os.path.exists(checkpoint) or '://' not in str(checkpoint):
        return read_checkpoint(checkpoint, map_location='cpu', mmap=mmap)
    return CheckpointLoader.load_checkpoint(str(checkpoint), map_location='cpu')


def load_fitting_checkpoint(
    model: nn.Module,
    checkpoint: str | os.PathLike,
    cfg: Config,
    owner: str = '',
    loaded: dict | None = None,
) -> dict:
    """Load ``checkpoint`` into ``model`` strictly, then ``check_checkpoint_settings``.

    A file that is no checkpoint, a checkpoint that does not fit the model and one trained
    under another meaning are each an ``InputError`` (prefixed ``owner: `` where given)
    before any work.

    Args:
        model: the model built from ``cfg``.
        checkpoint: its path (or URL), named in errors.
        cfg: the config ``model`` was built from.
        owner: the caller, prefixed to errors (e.g. ``Sparse4DTracker``).
        loaded: the checkpoint already read from ``checkpoint``, to avoid reading it twice.

    Returns:
        The loaded checkpoint.
    """
    prefix = f'{owner}: ' if owner else ''
    if loaded is None:
        try:
            loaded = read_any_checkpoint(checkpoint)
        except InputError as error:
            raise InputError(f'{prefix}{error}') from error
    try:
        _load_checkpoint_to_model(model, loaded, strict=True)
    except (RuntimeError, KeyError) as error:
        raise InputError(
            f'{prefix}checkpoint {checkpoint} does not fit the model of {cfg.filename}: '
            f'{_one_line(str(error))}'
        ) from error
    MMLogger.get_current_instance().info(f'Loaded checkpoint {checkpoint} (strict)')
    check_checkpoint_settings(loaded.get('meta') or {}, cfg, checkpoint)
    return loaded


def check_checkpoint_settings(meta: dict, cfg: Config, checkpoint: str | os.PathLike) -> None:
    """Raise ``InputError`` naming the setting where the training config in a checkpoint's
    ``meta`` and ``cfg`` disagree on one of ``WEIGHT_MEANING``. A checkpoint without a
    readable config (not written by mmengine's Runner, or one whose custom modules are absent
    here) is not compared, and the log says so."""
    logger = MMLogger.get_current_instance()
    text = meta.get('cfg')
    if not text:
        logger.warning(
            f'{checkpoint}: no training config in its meta; the settings that change what '
            'its weights mean are not compared with the config'
        )
        return
    try:
        trained = Config.fromstring(text, '.py').to_dict()
    except Exception as error:  # a config is Python: any error of its own can come out
        reason = f'{type(error).__name__}: {str(error)[:200]}'
        logger.warning(
            f'{checkpoint}: its training config cannot be read here ({reason}); settings '
            'not compared'
        )
        return
    current = cfg.to_dict()
    for key, default in WEIGHT_MEANING.items():
        then, now = _lookup(trained, key, default), _lookup(current, key, default)
        if not _same(then, now):
            name = Path(str(cfg.filename)).name if cfg.filename else 'the config'
            raise InputError(
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


def check_training_checkpoint(cfg: Config) -> dict | None:
    """``check_checkpoint_settings`` for ``training_checkpoint(cfg)``: resuming or fine-tuning
    weights trained under another meaning is refused before the Runner starts (mmengine
    would load them, shapes being equal, and train on). Returns the checkpoint (None
    without one), for ``check_training_start_fits``."""
    path = training_checkpoint(cfg)
    if path is None:
        return None
    # Memory-mapped where the format allows: only the meta and the shapes are read here;
    # the Runner reads the weights once.
    checkpoint = read_any_checkpoint(path, mmap=True)
    check_checkpoint_settings(checkpoint.get('meta') or {}, cfg, path)
    return checkpoint


def check_training_start_fits(model: nn.Module, cfg: Config, loaded: dict | None) -> None:
    """mmengine loads the checkpoint a training run resumes or starts from non-strictly: a
    weight of another shape, or one the model lacks, only warns, and the run trains on with
    those layers at their initial values. Refused here, after the model is built and before
    the first step, naming the key and both shapes. Weights the checkpoint lacks are
    refused on a resume, and logged for a fine-tuning start (``finetune_start.py`` leaves
    some out on purpose; the model initialises them). ``loaded``: the checkpoint
    ``check_training_checkpoint`` read (None: training starts from scratch)."""
    if loaded is None:
        return
    path = training_checkpoint(cfg)
    state = loaded.get('state_dict', loaded)
    if state and all(key.startswith('module.') for key in state):
        state = {key[len('module.') :]: value for key, value in state.items()}
    expected = (model.module if hasattr(model, 'module') else model).state_dict()
    name = Path(str(cfg.filename)).name if cfg.filename else 'the config'
    shapes = [
        (key, tuple(value.shape), tuple(expected[key].shape))
        for key, value in state.items()
        if key in expected and hasattr(value, 'shape') and value.shape != expected[key].shape
    ]
    start = 'resume from' if cfg.get('resume') else 'fine-tune from'
    fix = (
        'use the config it was trained with'
        if cfg.get('resume')
        else 'use the config it was trained with, or write a start without those weights: '
        'tools/model_converters/finetune_start.py CHECKPOINT OUT --drop KEY_PREFIX'
    )
    if shapes:
        key, theirs, ours = shapes[0]
        more = f' (and {len(shapes) - 1} more)' if len(shapes) > 1 else ''
        raise InputError(
            f'checkpoint {path} does not fit the model of {name} to {start}: {key} is '
            f'{list(theirs)} there, {list(ours)} in the model{more}; {fix}'
        )
    unexpected = [key for key in state if key not in expected]
    if unexpected:
        more = f' (and {len(unexpected) - 1} more)' if len(unexpected) > 1 else ''
        raise InputError(
            f'checkpoint {path} does not fit the model of {name} to {start}: it has '
            f'{unexpected[0]}{more}, which the model lacks; {fix}'
        )
    missing = [key for key in expected if key not in state]
    if missing and cfg.get('resume'):
        raise InputError(
            f'checkpoint {path} does not fit the model of {name} to resume from: it lacks '
            f'{missing[0]}' + (f' (and {len(missing) - 1} more)' if len(missing) > 1 else '')
        )
    if missing:
        MMLogger.get_current_instance().info(
            f'{path}: {len(missing)} weights of the model are not in it and start from their '
            f'initialisation (e.g. {missing[0]})'
        )


def use_checkpoint_anchors(
    cfg: Config, loaded: dict, checkpoint: str | os.PathLike, folder: str | os.PathLike
) -> str | None:
    """Let a model be built without its k-means anchor file when the checkpoint holds the
    anchors (learned parameters, ``head.instance_bank.anchor``); the file is needed only to
    initialise training. The checkpoint's anchors are written to an .npy file in ``folder``
    and ``cfg.model.head.instance_bank.anchor`` names it. (A file, not an array in the
    config: the Runner prints its config, and an array has no printable form there.)

    Args:
        cfg: the config, changed in place.
        loaded: the checkpoint (its ``state_dict``).
        checkpoint: its path, for the message.
        folder: where the anchors' file goes (a temporary folder of the caller's).

    Returns:
        The line to log, or None where nothing was changed (no instance bank with an anchor
        path, or a checkpoint without anchors).
    """
    bank = _lookup(cfg.get('model') or {}, 'head.instance_bank', None)
    state = loaded.get('state_dict', loaded)
    anchors = state.get(ANCHOR_KEY) if isinstance(state, dict) else None
    if not isinstance(bank, dict) or not isinstance(bank.get('anchor'), (str, os.PathLike)):
        return None
    if not isinstance(anchors, torch.Tensor) or anchors.ndim != 2:
        return None
    configured = bank['anchor']
    path = Path(folder) / f'{Path(str(checkpoint)).stem}_anchors.npy'
    np.save(path, anchors.float().numpy())
    bank['anchor'] = str(path)
    return (
        f'{ANCHOR_SETTING}: the anchors come from checkpoint {checkpoint}; {configured} is not read'
    )
