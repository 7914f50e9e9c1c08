"""Box codec (11-d anchor <-> 10-d box), index constants, multi-camera batches."""

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
from .multiview_batch import CAMERA_PADDING, stack_depth_targets, stack_multiview_inputs

__all__ = [
    'ANCHOR_DIM', 'BOX_DIM', 'COS_YAW', 'GT_BOX_DIM', 'H', 'L', 'SIN_YAW', 'VX', 'VY', 'VZ', 'W',
    'X', 'Y', 'YAW', 'Z', 'decode_anchor', 'encode_box', 'CAMERA_PADDING', 'stack_depth_targets',
    'stack_multiview_inputs',
]  # fmt: skip
