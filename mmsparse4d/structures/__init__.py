"""Box codec (11-d anchor <-> 10-d box), index constants, camera maths, multi-camera
batches, track ids."""

from .box3d import (
    ANCHOR_DIM,
    BOX_DIM,
    COS_YAW,
    GT_BOX_DIM,
    SIN_YAW,
    VX,
    VY,
    VZ,
    YAW,
    H,
    L,
    W,
    X,
    Y,
    Z,
    decode_anchor,
    encode_box,
)
from .camera_geometry import camera_centre, projection_matrix, recentre_on_origin
from .multiview_batch import CAMERA_PADDING, stack_depth_targets, stack_multiview_inputs

__all__ = [
    'ANCHOR_DIM',
    'BOX_DIM',
    'COS_YAW',
    'GT_BOX_DIM',
    'H',
    'L',
    'SIN_YAW',
    'VX',
    'VY',
    'VZ',
    'W',
    'X',
    'Y',
    'YAW',
    'Z',
    'decode_anchor',
    'encode_box',
    'camera_centre',
    'projection_matrix',
    'recentre_on_origin',
    'CAMERA_PADDING',
    'stack_depth_targets',
    'stack_multiview_inputs',
]
