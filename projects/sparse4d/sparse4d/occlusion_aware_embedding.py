"""Occlusion-aware embedding: per-camera features fused with visibility weights."""

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmsparse4d.registry import MODELS


@MODELS.register_module()
class OcclusionAwareEmbedding(BaseModule):
    """sum_n softmax_n(v_n / temperature) f_n (the paper's equation 2).

    Args:
        temperature: of the softmax over cameras; cameras where the instance is not
            projected at all (``camera_mask`` False) get no weight.
    """

    def __init__(self, temperature: float = 1.0, init_cfg=None):
        super().__init__(init_cfg)
        self.temperature = temperature

    def forward(
        self, camera_features: Tensor, visibility: Tensor, camera_mask: Tensor | None = None
    ) -> Tensor:
        """camera_features [B, A, N, C], visibility [B, A, N], camera_mask [B, A, N] bool
        -> [B, A, C]. An instance seen by no camera gets zeros."""
        logits = visibility / self.temperature
        if camera_mask is not None:
            logits = logits.masked_fill(~camera_mask, float('-inf'))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)
        return (weights[..., None] * camera_features).sum(dim=-2)
