"""Converters from raw scenes: OVPKL pickles, camera groups, k-means anchors."""

from .anchors import kmeans_anchors
from .camera_groups import (
    CameraGroup,
    FloorCoverage,
    create_camera_groups,
    draw_camera_groups,
    floor_coverage,
)
from .ovpkl import SCHEMA_VERSION, AssetIds, convert_scene, write_ovpkl

__all__ = [
    'SCHEMA_VERSION',
    'AssetIds',
    'CameraGroup',
    'FloorCoverage',
    'convert_scene',
    'create_camera_groups',
    'draw_camera_groups',
    'floor_coverage',
    'kmeans_anchors',
    'write_ovpkl',
]
