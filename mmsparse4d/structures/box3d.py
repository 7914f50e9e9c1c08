"""Index constants of 3D boxes and anchors.

Anchor / prediction state, 11-d: ``[x, y, z, log w, log l, log h, sin yaw, cos yaw, vx, vy, vz]``.
Decoded boxes, 10-d: ``[x, y, z, w, l, h, yaw, vx, vy, vz]``; ground-truth boxes in the
data pipeline are the first 7 of those. World metres, z up; (w, l, h) are the extents along
the box's own (x, y, z) axes and yaw turns its x axis counter-clockwise from the world x axis.
"""

import torch
from torch import Tensor

X, Y, Z, W, L, H, SIN_YAW, COS_YAW, VX, VY, VZ = range(11)
YAW = 6  # in decoded boxes
ANCHOR_DIM = 11
BOX_DIM = 10
GT_BOX_DIM = 7


def decode_anchor(anchor: Tensor) -> Tensor:
    """Anchors / predictions [..., 11] to boxes [..., 10] (x, y, z, w, l, h, yaw, vx, vy, vz)."""
    size = anchor[..., [W, L, H]].exp()
    yaw = torch.atan2(anchor[..., SIN_YAW], anchor[..., COS_YAW])
    return torch.cat([anchor[..., [X, Y, Z]], size, yaw[..., None], anchor[..., VX:]], dim=-1)


def encode_box(box: Tensor) -> Tensor:
    """Boxes [..., 7 or 10] to anchors [..., 11] (zero velocity where the box has none)."""
    velocity = box[..., 7:10] if box.shape[-1] >= 10 else box.new_zeros((*box.shape[:-1], 3))
    yaw = box[..., 6:7]
    return torch.cat([box[..., :3], box[..., 3:6].log(), yaw.sin(), yaw.cos(), velocity], dim=-1)
