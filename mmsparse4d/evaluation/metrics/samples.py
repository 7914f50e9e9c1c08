"""Reading predictions and ground truth out of the data samples the model returns, and
where metrics write their files."""

import os.path as osp

import numpy as np
import torch
from mmengine.logging import MMLogger


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def instances(sample: dict, key: str) -> dict[str, np.ndarray]:
    """``bboxes_3d`` [M, 7] (the first 7 columns), ``labels_3d`` and, where present,
    ``scores_3d``, ``instance_ids`` (ground truth) and ``track_ids`` (predictions, from
    ``FIRST_TRACK_ID``), as numpy, from ``sample[key]``."""
    if key not in sample:
        raise KeyError(f'data sample {sample.get("token", "?")} has no {key!r}')
    data = sample[key]
    labels = _numpy(data['labels_3d']).astype(np.int64).reshape(-1)
    boxes = _numpy(data['bboxes_3d']).astype(np.float64)
    boxes = boxes.reshape(len(labels), -1)[:, :7] if boxes.size else np.zeros((0, 7))
    out = {'bboxes_3d': boxes, 'labels_3d': labels}
    for name in ('scores_3d', 'instance_ids', 'track_ids'):
        if name in data:
            out[name] = _numpy(data[name]).reshape(-1)
    return out


def to_world(boxes: np.ndarray, sample: dict) -> np.ndarray:
    """Boxes of a (re-centred) group frame back in world coordinates."""
    origin = np.asarray(sample.get('origin', np.zeros(3)), dtype=np.float64).reshape(3)
    world = boxes.copy()
    world[:, :3] += origin
    return world


def output_prefix(prefix: str | None, name: str) -> str:
    """``prefix``, else ``<log folder>/<name>`` (the run's folder), else ``./<name>``."""
    if prefix:
        return prefix
    log_file = getattr(MMLogger.get_current_instance(), 'log_file', None)
    return osp.join(osp.dirname(log_file) if log_file else '.', name)
