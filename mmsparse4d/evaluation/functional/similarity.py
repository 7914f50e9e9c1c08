"""Similarities between 3D boxes: IoU of yaw-rotated boxes, and centre distance.

Boxes are [..., 7] (x, y, z, w, l, h, yaw): centroid in metres, extents along the box's own
x, y, z axes, yaw about the world z axis.
"""

import numpy as np
import torch
from mmcv.ops import box_iou_rotated


def _bev(boxes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(boxes[:, [0, 1, 3, 4, 6]], dtype=np.float32))


def iou_3d(boxes_a: np.ndarray, boxes_b: np.ndarray, aligned: bool = False) -> np.ndarray:
    """3D IoU of yaw-rotated boxes: rotated bird's-eye-view overlap times height overlap.

    Args:
        boxes_a: [A, 7]; boxes_b: [B, 7] ([A, 7] when ``aligned``).
        aligned: pairwise row by row instead of every pair.

    Returns:
        np.ndarray: [A, B] (or [A] when aligned) float64 IoU in [0, 1].
    """
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 7)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 7)
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros(len(boxes_a) if aligned else (len(boxes_a), len(boxes_b)))
    bev_iou = box_iou_rotated(_bev(boxes_a), _bev(boxes_b), aligned=aligned).double().numpy()
    area_a = boxes_a[:, 3] * boxes_a[:, 4]
    area_b = boxes_b[:, 3] * boxes_b[:, 4]
    if not aligned:
        area_a, area_b = area_a[:, None], area_b[None, :]
    # IoU = I / (A + B - I)  =>  I = IoU (A + B) / (1 + IoU).
    bev_intersection = bev_iou * (area_a + area_b) / (1 + bev_iou)
    top_a, bottom_a = boxes_a[:, 2] + boxes_a[:, 5] / 2, boxes_a[:, 2] - boxes_a[:, 5] / 2
    top_b, bottom_b = boxes_b[:, 2] + boxes_b[:, 5] / 2, boxes_b[:, 2] - boxes_b[:, 5] / 2
    if not aligned:
        top_a, bottom_a = top_a[:, None], bottom_a[:, None]
        top_b, bottom_b = top_b[None, :], bottom_b[None, :]
    height = np.clip(np.minimum(top_a, top_b) - np.maximum(bottom_a, bottom_b), 0, None)
    intersection = bev_intersection * height
    volume_a = area_a * (boxes_a[:, 5] if aligned else boxes_a[:, 5][:, None])
    volume_b = area_b * (boxes_b[:, 5] if aligned else boxes_b[:, 5][None, :])
    union = volume_a + volume_b - intersection
    return np.clip(np.where(union > 0, intersection / np.where(union > 0, union, 1), 0), 0, 1)


def center_similarity(
    boxes_a: np.ndarray, boxes_b: np.ndarray, zero_distance: float = 2.0
) -> np.ndarray:
    """1 - d / zero_distance clipped to [0, 1], d the 3D centre distance in metres: [A, B]."""
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 7)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 7)
    distance = np.linalg.norm(boxes_a[:, None, :3] - boxes_b[None, :, :3], axis=-1)
    return np.clip(1 - distance / zero_distance, 0, 1)
