"""Random but well-formed model inputs: cameras on a ring looking at the origin, boxes
around it, so that every key point projects into the images. Used by the tests, the
profiling and benchmark tools."""

import copy
import logging
import math
from pathlib import Path

import numpy as np
import torch
from mmdet3d.structures import Det3DDataSample
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from mmengine.utils import import_modules_from_strings

from mmsparse4d.registry import MODELS

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO_ROOT / 'configs' / 'sparse4d' / 'sparse4d_tiny_synthetic.py'


def ring_cameras(count: int, width: int, height: int, radius: float = 12.0) -> np.ndarray:
    """[N, 4, 4] world-to-pixel projections of cameras 3 m up on a ring, facing the origin."""
    focal = 0.8 * width
    intrinsic = np.array(
        [[focal, 0, width / 2, 0], [0, focal, height / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    )
    out = []
    for index in range(count):
        angle = 2 * math.pi * index / count
        centre = np.array([radius * math.cos(angle), radius * math.sin(angle), 3.0])
        forward = -centre / np.linalg.norm(centre)
        right = np.cross(forward, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        world_to_camera = np.eye(4)
        world_to_camera[:3, :3] = np.stack([right, down, forward])
        world_to_camera[:3, 3] = -world_to_camera[:3, :3] @ centre
        out.append(intrinsic @ world_to_camera)
    return np.stack(out).astype(np.float32)


def random_depth(rng: np.random.Generator, cams: int, height: int, width: int) -> torch.Tensor:
    """[cams, height, width] float32 depths in metres (1-30), -1 where a pixel has none
    (30% of them), as ``MultiScaleDepthTargets`` gives them."""
    depth = rng.uniform(1.0, 30.0, (cams, height, width))
    depth[rng.random(depth.shape) < 0.3] = -1.0
    return torch.from_numpy(depth.astype(np.float32))


def random_batch(
    batch=2,
    cams=(3, 2),
    size=(256, 144),
    boxes=5,
    seed=0,
    frame=0,
    scene='Warehouse_000',
    timestamp=None,
):
    """A data batch as pseudo_collate gives it: per sample uint8 images, projections,
    image_wh, timestamp, focal and ground truth."""
    rng = np.random.default_rng(seed)
    cams = cams if isinstance(cams, (list, tuple)) else [cams] * batch
    width, height = size
    inputs = {'img': [], 'projection_mat': [], 'image_wh': [], 'timestamp': [], 'focal': []}
    samples = []
    for b in range(batch):
        count = cams[b]
        inputs['img'].append(
            torch.from_numpy(rng.integers(0, 255, (count, 3, height, width), dtype=np.uint8))
        )
        inputs['projection_mat'].append(torch.from_numpy(ring_cameras(count, width, height)))
        inputs['image_wh'].append(torch.tensor([[width, height]] * count, dtype=torch.float32))
        time = frame / 30 if timestamp is None else timestamp
        inputs['timestamp'].append(torch.tensor(time, dtype=torch.float64))
        inputs['focal'].append(torch.full((count,), 0.8 * width))
        sample = Det3DDataSample(
            metainfo=dict(
                token=f'{scene}_{b}__{frame}',
                scene_name=f'{scene}_{b}',
                frame_idx=frame,
                timestamp=time,
                origin=np.array([1.0, 2.0, 0.0]),
            )
        )
        gt = InstanceData()
        centre = rng.uniform(-3, 3, (boxes, 3)) * [1, 1, 0] + [0, 0, 0.9]
        size3 = rng.uniform(0.5, 2.0, (boxes, 3))
        yaw = rng.uniform(-math.pi, math.pi, (boxes, 1))
        gt.bboxes_3d = torch.tensor(np.c_[centre, size3, yaw], dtype=torch.float32)
        gt.labels_3d = torch.from_numpy(rng.integers(0, 6, boxes))
        gt.velocities = torch.tensor(
            rng.uniform(-1, 1, (boxes, 3)) * [1, 1, 0], dtype=torch.float32
        )
        gt.instance_ids = torch.arange(boxes) + 100 * b
        gt.asset_ids = torch.from_numpy(rng.integers(0, 10, boxes))
        gt.visibility = torch.from_numpy(rng.uniform(0, 1, (boxes, count)).astype(np.float32))
        sample.gt_instances_3d = gt
        samples.append(sample)
    return {'inputs': inputs, 'data_samples': samples}


def build_untrained_model(config=TINY_CONFIG, cfg_options=None, **head_overrides):
    """A config's model (default: the tiny one; a path or a loaded ``Config``, which is not
    changed) with random anchors around the origin, initialised; ``head_overrides`` update
    ``model.head``."""
    cfg = copy.deepcopy(config) if isinstance(config, Config) else Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    rng = np.random.default_rng(0)
    count = cfg.model.head.instance_bank.num_anchor
    anchors = np.zeros((count, 11), np.float32)
    anchors[:, :2] = rng.uniform(-4, 4, (count, 2))
    anchors[:, 2] = 0.9
    anchors[:, 3:6] = np.log(1.0)
    anchors[:, 7] = 1.0
    cfg.model.head.instance_bank.anchor = anchors
    cfg.model.head.update(head_overrides)
    if cfg.get('custom_imports'):  # a project's modules (its config names them)
        import_modules_from_strings(**cfg.custom_imports)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
        model = MODELS.build(cfg.model)
    # mmengine logs every parameter's initialisation at INFO; keep test output readable.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model
