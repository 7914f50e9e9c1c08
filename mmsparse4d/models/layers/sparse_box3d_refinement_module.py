"""Per-decoder-layer box refinement, classification and quality estimation."""

import math

import torch
from mmcv.cnn import Scale
from mmengine.model import BaseModule
from mmengine.model.weight_init import bias_init_with_prob
from torch import Tensor, nn

from ...registry import MODELS
from ...structures import ANCHOR_DIM, COS_YAW, SIN_YAW, VX, H, L, W, X, Y, Z
from .linear_relu_ln import linear_relu_ln


@MODELS.register_module()
class SparseBox3DRefinementModule(BaseModule):
    """Refines anchors [B, A, 11] from instance features [B, A, C].

    Position, log size (and sin/cos with ``refine_yaw``) are residuals on the anchor; the
    velocity outputs are a displacement over the frame, divided by the time interval and
    added to the anchor's velocity (upstream's design; ``velocity_per_second=True`` makes
    them a velocity residual in m/s instead: at 30 FPS the division multiplies every output
    error by 30, against 2 at nuScenes' 2 Hz, see docs/design.md). Classification reads
    the instance feature alone; quality (centerness and yawness logits) reads feature +
    anchor embedding.

    With ``velocity_residual=False`` the velocity outputs replace the anchor's velocity
    instead of adding to it: NVIDIA TAO's refinement (its "+ anchor velocity" is commented
    out), a compatibility setting for TAO checkpoints, whose velocity weights were trained
    that way.

    With ``size_range=(smallest, largest)`` (metres) the refined sizes are clamped into
    it. The refined anchor is carried to the next frame and refined again, so a box whose
    size residual keeps the same sign grows without bound: a fine-tuned small model grew a
    carried box to 3284 x 107 m in 35 frames, and a box that size covers every other on the
    floor (docs/evaluation.md). Upstream Sparse4D and TAO have no bound (None).

    Returns:
        tuple: refined anchors [B, A, 11], class logits [B, A, K] or None, quality [B, A, 2]
        or None.
    """

    def __init__(
        self,
        embed_dims=256,
        num_cls=6,
        refine_yaw=True,
        with_quality_estimation=True,
        velocity_per_second=False,
        velocity_residual=True,
        size_range: tuple[float, float] | None = None,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        self.velocity_per_second = velocity_per_second
        self.velocity_residual = velocity_residual
        refined = [X, Y, Z, W, L, H] + ([SIN_YAW, COS_YAW] if refine_yaw else [])
        # 1 where the state is a residual on the anchor; a mask instead of indexed assignment
        # keeps the graph free of in-place writes (ONNX export).
        residual = torch.zeros(VX)
        residual[refined] = 1.0
        self.register_buffer('residual_mask', residual, persistent=False)
        self.size_range = tuple(size_range) if size_range is not None else None
        if self.size_range is not None:
            smallest, largest = self.size_range
            if not 0 < smallest < largest:
                raise ValueError(
                    'SparseBox3DRefinementModule: size_range must be (smallest, largest) '
                    f'metres with 0 < smallest < largest, got {size_range}'
                )
            # Per state channel: the log-size bounds on W, L, H, no bound elsewhere.
            lower, upper = torch.full((VX,), -math.inf), torch.full((VX,), math.inf)
            lower[[W, L, H]], upper[[W, L, H]] = math.log(smallest), math.log(largest)
            self.register_buffer('state_lower', lower, persistent=False)
            self.register_buffer('state_upper', upper, persistent=False)
        self.layers = nn.Sequential(
            linear_relu_ln(embed_dims, 2, 2),
            nn.Linear(embed_dims, ANCHOR_DIM),
            Scale([1.0] * ANCHOR_DIM),
        )
        self.cls_layers = nn.Sequential(
            linear_relu_ln(embed_dims, 1, 2), nn.Linear(embed_dims, num_cls)
        )
        self.quality_layers = (
            nn.Sequential(linear_relu_ln(embed_dims, 1, 2), nn.Linear(embed_dims, 2))
            if with_quality_estimation
            else None
        )

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.cls_layers[-1].bias, bias_init_with_prob(0.01))

    def forward(
        self,
        instance_feature: Tensor,
        anchor: Tensor,
        anchor_embed: Tensor,
        time_interval: Tensor,
        return_cls: bool = True,
    ):
        """time_interval: [B] seconds since the previous frame."""
        feature = instance_feature + anchor_embed
        delta = self.layers(feature)
        state = delta[..., :VX] + anchor[..., :VX] * self.residual_mask.to(anchor.dtype)
        if self.size_range is not None:
            state = torch.minimum(
                torch.maximum(state, self.state_lower.to(state.dtype)),
                self.state_upper.to(state.dtype),
            )
        velocity_delta = delta[..., VX:]
        if not self.velocity_per_second:
            velocity_delta = velocity_delta / time_interval[:, None, None]
        velocity = velocity_delta + anchor[..., VX:] if self.velocity_residual else velocity_delta
        refined = torch.cat([state, velocity], dim=-1)
        if not return_cls:
            return refined, None, None
        cls = self.cls_layers(instance_feature)
        quality = self.quality_layers(feature) if self.quality_layers is not None else None
        return refined, cls, quality
