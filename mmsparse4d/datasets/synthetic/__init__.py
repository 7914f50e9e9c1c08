"""Synthetic scenes in the raw AI City 2025 layout, rendered with exact occlusion."""

from .renderer import CameraRenderer, ObjectPixels
from .scene_model import (
    CLASS_SPECS,
    Box,
    MovingObject,
    SceneModel,
    camera_name,
    look_at_camera,
    make_scene_model,
)
from .writer import RGB_FORMATS, frame_boxes, write_synthetic_scene

__all__ = [
    'CLASS_SPECS',
    'RGB_FORMATS',
    'Box',
    'CameraRenderer',
    'MovingObject',
    'ObjectPixels',
    'SceneModel',
    'camera_name',
    'frame_boxes',
    'look_at_camera',
    'make_scene_model',
    'write_synthetic_scene',
]
