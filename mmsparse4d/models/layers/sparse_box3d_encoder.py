"""Anchor embedding: one MLP per group of anchor dimensions."""

import torch
from mmengine.model import BaseModule
from torch import Tensor

from ...registry import MODELS
from ...structures import COS_YAW, SIN_YAW, VX, H, W, X, Z
from .linear_relu_ln import linear_relu_ln


@MODELS.register_module()
class SparseBox3DEncoder(BaseModule):
    """Embeds anchors [B, A, 11] into [B, A, C].

    Four branches: position (x, y, z), log size, yaw (sin, cos) and velocity; each is
    ``out_loops`` x (``in_loops`` x [Linear, ReLU], LayerNorm). ``mode='cat'``
    concatenates them (``embed_dims`` a list summing to C, Sparse4D v3: [128, 32, 32, 64]);
    ``'add'`` sums them (one int).

    Args:
        vel_dims: velocity dimensions embedded (3; 0 leaves velocity out).
        output_fc: an extra MLP over the combined embedding.
    """

    def __init__(
        self,
        embed_dims=(128, 32, 32, 64),
        vel_dims=3,
        mode='cat',
        output_fc=False,
        in_loops=1,
        out_loops=4,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        if mode not in ('cat', 'add'):
            raise ValueError(f"SparseBox3DEncoder: mode must be 'cat' or 'add', got {mode!r}")
        branches = 4 if vel_dims > 0 else 3
        dims = (
            list(embed_dims) if isinstance(embed_dims, (list, tuple)) else [embed_dims] * branches
        )
        if len(dims) < branches:
            raise ValueError(f'SparseBox3DEncoder: {branches} embed_dims needed, got {dims}')
        if mode == 'add' and len(set(dims[:branches])) != 1:
            raise ValueError(f"SparseBox3DEncoder: mode 'add' needs equal embed_dims, got {dims}")
        self.mode, self.vel_dims = mode, vel_dims
        self.pos_fc = linear_relu_ln(dims[0], in_loops, out_loops, 3)
        self.size_fc = linear_relu_ln(dims[1], in_loops, out_loops, 3)
        self.yaw_fc = linear_relu_ln(dims[2], in_loops, out_loops, 2)
        self.vel_fc = (
            linear_relu_ln(dims[3], in_loops, out_loops, vel_dims) if vel_dims > 0 else None
        )
        self.embed_dims = sum(dims[:branches]) if mode == 'cat' else dims[0]
        self.output_fc = linear_relu_ln(self.embed_dims, in_loops, 2) if output_fc else None

    def forward(self, anchor: Tensor) -> Tensor:
        """anchor [..., 11] -> embedding [..., C]."""
        # One split into consecutive columns, not index lists (a list becomes a host tensor
        # copied to the device on every call, which a CUDA graph capture refuses) nor a
        # slice per part (in training each slice's gradient is a zero-filled tensor of the
        # whole anchor and an add; a split's is one concatenation).
        velocity = self.vel_dims if self.vel_fc is not None else 0
        position, size, yaw, velocity_part, _ = anchor.split(
            [
                Z + 1 - X,
                H + 1 - W,
                COS_YAW + 1 - SIN_YAW,
                velocity,
                anchor.shape[-1] - VX - velocity,
            ],
            dim=-1,
        )
        parts = [self.pos_fc(position), self.size_fc(size), self.yaw_fc(yaw)]
        if self.vel_fc is not None:
            parts.append(self.vel_fc(velocity_part))
        out = torch.cat(parts, dim=-1) if self.mode == 'cat' else torch.stack(parts).sum(0)
        return self.output_fc(out) if self.output_fc is not None else out
