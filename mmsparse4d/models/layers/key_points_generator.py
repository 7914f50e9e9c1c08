"""Key points of an anchor box, and anchor propagation to another time and frame."""

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS
from ...structures import COS_YAW, SIN_YAW, VX, H, W, X, Z

# The centre and +-0.45 of the size along each of the box's axes (Sparse4D v3).
DEFAULT_FIXED_POINTS = (
    (0.0, 0.0, 0.0),
    (0.45, 0.0, 0.0),
    (-0.45, 0.0, 0.0),
    (0.0, 0.45, 0.0),
    (0.0, -0.45, 0.0),
    (0.0, 0.0, 0.45),
    (0.0, 0.0, -0.45),
)
# Those plus the four footprint corners at mid-height. Every default point lies on an axis
# of the box, so an object turned by +d or -d from the anchor's yaw covers the same default
# points (the box is symmetric under a half turn and the point set under the mirror); a
# corner is covered for one sign of d and not the other, so only the corners tell which
# way to turn. The small synthetic configs use them (docs/design.md); they change the
# number of points, so checkpoints of the default set do not load.
CORNER_FIXED_POINTS = DEFAULT_FIXED_POINTS + (
    (0.45, 0.45, 0.0),
    (-0.45, 0.45, 0.0),
    (-0.45, -0.45, 0.0),
    (0.45, -0.45, 0.0),
)
# The sets a config names (``fix_scale='v3_corners'``) instead of typing the numbers again.
FIXED_POINT_SETS = {'v3': DEFAULT_FIXED_POINTS, 'v3_corners': CORNER_FIXED_POINTS}


@MODELS.register_module()
class KeyPointsGenerator(BaseModule):
    """Fixed and learned key points of each anchor box, in the anchors' frame.

    Fixed points are fractions of the box size; learned ones come from the instance feature
    (Linear -> sigmoid - 0.5, times the size), so they stay inside the box. Both are rotated
    by the anchor's yaw and moved to its centre.

    Args:
        embed_dims: instance feature width C.
        num_learnable_pts: learned points per anchor (6 in Sparse4D v3).
        fix_scale: [Pf, 3] fixed points as fractions of (w, l, h), or the name of one of
            ``FIXED_POINT_SETS`` (``'v3'``: Sparse4D v3's 7; ``'v3_corners'``: those and the
            4 footprint corners).

    Raises:
        ValueError: for a name ``FIXED_POINT_SETS`` does not hold.
    """

    def __init__(
        self, embed_dims=256, num_learnable_pts=6, fix_scale=DEFAULT_FIXED_POINTS, init_cfg=None
    ):
        super().__init__(init_cfg)
        if isinstance(fix_scale, str):
            if fix_scale not in FIXED_POINT_SETS:
                raise ValueError(
                    f'KeyPointsGenerator: fix_scale {fix_scale!r} is not a known point set; '
                    f'known: {sorted(FIXED_POINT_SETS)}'
                )
            fix_scale = FIXED_POINT_SETS[fix_scale]
        self.fix_scale = nn.Parameter(
            torch.tensor(fix_scale, dtype=torch.float32), requires_grad=False
        )
        self.num_learnable_pts = num_learnable_pts
        self.num_pts = len(fix_scale) + num_learnable_pts
        self.learnable_fc = (
            nn.Linear(embed_dims, num_learnable_pts * 3) if num_learnable_pts else None
        )

    def init_weights(self) -> None:
        if self.learnable_fc is not None:
            nn.init.xavier_uniform_(self.learnable_fc.weight)
            nn.init.zeros_(self.learnable_fc.bias)

    def forward(self, anchor: Tensor, instance_feature: Tensor | None = None) -> Tensor:
        """anchor [B, A, 11], instance_feature [B, A, C] -> key points [B, A, P, 3]."""
        size = anchor[..., W : H + 1].exp()
        points = self.fix_scale * size[..., None, :]
        if self.learnable_fc is not None:
            if instance_feature is None:
                raise ValueError('KeyPointsGenerator: learned points need the instance feature')
            batch, anchors = anchor.shape[:2]
            learned = self.learnable_fc(instance_feature).reshape(batch, anchors, -1, 3)
            points = torch.cat([points, (learned.sigmoid() - 0.5) * size[..., None, :]], dim=-2)
        # unbind, not one index per column: in training each index's gradient is a
        # zero-filled tensor of the whole input and an add (an unbind's is one stack).
        sin, cos = anchor[..., SIN_YAW : COS_YAW + 1, None].unbind(-2)  # [B, A, 1] each
        along, across, up = points.unbind(-1)
        x = cos * along - sin * across
        y = sin * along + cos * across
        points = torch.stack([x, y, up], dim=-1)
        return points + anchor[..., None, X : Z + 1]

    @staticmethod
    def anchor_projection(
        anchor: Tensor, time_interval: Tensor, transform: Tensor | None = None
    ) -> Tensor:
        """Move anchors [B, A, 11] forward by ``time_interval`` [B] seconds at their velocity,
        then, with ``transform`` [B, 4, 4], into another frame (centre, yaw and velocity).

        Unlike upstream Sparse4D, sin and cos land in their own slots (upstream writes the
        rotated (cos, sin) into (SIN_YAW, COS_YAW), swapping them on every propagation).
        """
        centre = anchor[..., X : Z + 1] + anchor[..., VX:] * time_interval[:, None, None]
        size = anchor[..., W : H + 1]
        cos, sin = anchor[..., COS_YAW], anchor[..., SIN_YAW]
        velocity = anchor[..., VX:]
        if transform is not None:
            rotation = transform[:, None, :3, :3]
            centre = (rotation @ centre[..., None]).squeeze(-1) + transform[:, None, :3, 3]
            rotated_cos = rotation[..., 0, 0] * cos + rotation[..., 0, 1] * sin
            rotated_sin = rotation[..., 1, 0] * cos + rotation[..., 1, 1] * sin
            cos, sin = rotated_cos, rotated_sin
            velocity = (rotation @ velocity[..., None]).squeeze(-1)
        return torch.cat([centre, size, sin[..., None], cos[..., None], velocity], dim=-1)
