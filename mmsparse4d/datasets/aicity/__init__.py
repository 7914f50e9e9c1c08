"""Readers of raw scenes in the AI City 2025 MTMC and Isaac Sim h5 layouts."""

from .calibration import CalibrationError, CameraCalibration, load_calibration
from .class_names import KNOWN_CLASSES, UnknownClassError, canonical_class_name
from .frame_readers import (
    FrameReadError,
    H5DepthReader,
    H5RgbReader,
    Mp4Reader,
    open_depth_reader,
)
from .ground_truth import (
    CLASSES,
    GroundTruthError,
    GroundTruthObject,
    box_corners,
    load_ground_truth,
)
from .raw_scene import RawScene

__all__ = [
    'CLASSES',
    'CalibrationError',
    'CameraCalibration',
    'FrameReadError',
    'GroundTruthError',
    'GroundTruthObject',
    'H5DepthReader',
    'H5RgbReader',
    'KNOWN_CLASSES',
    'Mp4Reader',
    'RawScene',
    'UnknownClassError',
    'box_corners',
    'canonical_class_name',
    'load_calibration',
    'load_ground_truth',
    'open_depth_reader',
]
