"""Box codec (11-d anchor <-> 10-d box), index constants, camera utilities."""

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

__all__ = [
    'ANCHOR_DIM', 'BOX_DIM', 'COS_YAW', 'GT_BOX_DIM', 'H', 'L', 'SIN_YAW', 'VX', 'VY', 'VZ', 'W',
    'X', 'Y', 'YAW', 'Z', 'decode_anchor', 'encode_box',
]  # fmt: skip
