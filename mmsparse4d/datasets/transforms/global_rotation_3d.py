"""Rotate the whole scene about the vertical axis (training augmentation)."""

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class GlobalRotation3D(BaseTransform):
    """Rotate boxes, velocities and the cameras' projections about z by one random angle.

    With R the rotation, a world point X becomes R X: box centres and velocities are rotated,
    yaw grows by the angle, and ``projection`` / ``world_to_camera`` become P @ R^-1 so
    every camera still sees the same pixels.

    Args:
        rotation_range: (min, max) radians; upstream Sparse4D uses +-0.3925.
    """

    def __init__(self, rotation_range=(-0.3925, 0.3925)):
        self.rotation_range = rotation_range

    def transform(self, results: dict) -> dict:
        angle = float(np.random.uniform(*self.rotation_range))
        cos, sin = np.cos(angle), np.sin(angle)
        rotation = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
        inverse = np.eye(4)
        inverse[:3, :3] = rotation.T
        boxes = results['gt_bboxes_3d'].astype(np.float64).copy()
        boxes[:, :3] = boxes[:, :3] @ rotation.T
        boxes[:, 6] = np.arctan2(np.sin(boxes[:, 6] + angle), np.cos(boxes[:, 6] + angle))
        results['gt_bboxes_3d'] = boxes.astype(np.float32)
        results['gt_velocity'] = (results['gt_velocity'] @ rotation.T).astype(np.float32)
        results['projection'] = results['projection'] @ inverse
        results['world_to_camera'] = results['world_to_camera'] @ inverse
        results['rotation_3d'] = rotation @ results.get('rotation_3d', np.eye(3))
        return results
