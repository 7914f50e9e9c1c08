"""Similarities between 3D boxes: IoU of yaw-rotated boxes, and centre distance.

Boxes are [..., 7] (x, y, z, w, l, h, yaw): centroid in metres, extents along the box's own
x, y, z axes, yaw about the world z axis.
"""

import numpy as np
import torch
from mmcv.ops import box_iou_rotated


def _bev(boxes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(boxes[:, [0, 1, 3, 4, 6]], dtype=np.float32))


def _aligned_iou_3d(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of row pairs [K, 7] x [K, 7] -> [K]; the rotated overlap is computed only for
    pairs whose footprint circles and height ranges overlap (most pairs in a scene don't)."""
    iou = np.zeros(len(boxes_a))
    radius_a = 0.5 * np.hypot(boxes_a[:, 3], boxes_a[:, 4])
    radius_b = 0.5 * np.hypot(boxes_b[:, 3], boxes_b[:, 4])
    near = np.hypot(*(boxes_a[:, :2] - boxes_b[:, :2]).T) < radius_a + radius_b
    top = np.minimum(boxes_a[:, 2] + boxes_a[:, 5] / 2, boxes_b[:, 2] + boxes_b[:, 5] / 2)
    bottom = np.maximum(boxes_a[:, 2] - boxes_a[:, 5] / 2, boxes_b[:, 2] - boxes_b[:, 5] / 2)
    height = top - bottom
    candidates = np.flatnonzero(near & (height > 0))
    if len(candidates) == 0:
        return iou
    a, b = boxes_a[candidates], boxes_b[candidates]
    bev_iou = box_iou_rotated(_bev(a), _bev(b), aligned=True).double().numpy()
    area_a, area_b = a[:, 3] * a[:, 4], b[:, 3] * b[:, 4]
    # IoU = I / (A + B - I)  =>  I = IoU (A + B) / (1 + IoU).
    intersection = bev_iou * (area_a + area_b) / (1 + bev_iou) * height[candidates]
    union = area_a * a[:, 5] + area_b * b[:, 5] - intersection
    iou[candidates] = np.clip(
        np.where(union > 0, intersection / np.where(union > 0, union, 1), 0), 0, 1
    )
    return iou


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
    if aligned:
        if len(boxes_a) != len(boxes_b):
            raise ValueError(f'iou_3d(aligned=True) needs as many boxes on both sides, got '
                             f'{len(boxes_a)} and {len(boxes_b)}')  # fmt: skip
        return _aligned_iou_3d(boxes_a, boxes_b)
    rows, cols = np.meshgrid(np.arange(len(boxes_a)), np.arange(len(boxes_b)), indexing='ij')
    pairs = _aligned_iou_3d(boxes_a[rows.ravel()], boxes_b[cols.ravel()])
    return pairs.reshape(len(boxes_a), len(boxes_b))


def center_similarity(
    boxes_a: np.ndarray, boxes_b: np.ndarray, zero_distance: float = 2.0
) -> np.ndarray:
    """1 - d / zero_distance clipped to [0, 1], d the 3D centre distance in metres: [A, B]."""
    boxes_a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 7)
    boxes_b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 7)
    distance = np.linalg.norm(boxes_a[:, None, :3] - boxes_b[None, :, :3], axis=-1)
    return np.clip(1 - distance / zero_distance, 0, 1)
