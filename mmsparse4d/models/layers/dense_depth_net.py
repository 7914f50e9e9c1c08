"""Auxiliary dense depth from the first feature levels (training only)."""

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS
from ..utils import global_mean_denominator


@MODELS.register_module()
class DenseDepthNet(BaseModule):
    """Depth [B*N, 1, H_l, W_l] per level from a 1x1 conv: exp(conv) x fx / equal_focal, so
    one network serves cameras of different focal lengths.

    Args:
        embed_dims: feature channels.
        num_depth_layers: levels supervised (the first ones: strides 4, 8, 16).
        equal_focal: the focal length (pixels) the raw output is relative to.
        max_depth: predictions are clipped to [0, max_depth] metres in the loss.
        loss_weight: scale of the loss.
    """

    def __init__(
        self,
        embed_dims=256,
        num_depth_layers=3,
        equal_focal=100.0,
        max_depth=60.0,
        loss_weight=0.2,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        self.equal_focal, self.max_depth, self.loss_weight = equal_focal, max_depth, loss_weight
        self.depth_layers = nn.ModuleList(
            nn.Conv2d(embed_dims, 1, 1) for _ in range(num_depth_layers)
        )

    def forward(self, feature_maps: list[Tensor], focal: Tensor) -> list[Tensor]:
        """feature_maps: per level [B*N, C, H, W]; focal: [B*N] fx in pixels (after resize)."""
        scale = (focal / self.equal_focal).reshape(-1, 1, 1, 1)
        return [
            layer(feat).float().exp() * scale
            for layer, feat in zip(self.depth_layers, feature_maps, strict=False)
        ]

    def loss(self, depth_preds: list[Tensor], depth_targets: list[Tensor]) -> Tensor:
        """L1 over pixels with a valid target (> 0; -1 marks invalid), averaged per level (over
        the global batch under data parallelism).

        depth_targets: per level [B*N, H, W] metres, as MultiScaleDepthTargets makes them.
        """
        total = depth_preds[0].new_zeros(())
        for pred, target in zip(depth_preds, depth_targets, strict=False):
            with torch.autocast(device_type=pred.device.type, enabled=False):
                pred = pred.float().squeeze(1)
                target = target.float().to(pred.device)
                valid = (target > 0) & torch.isfinite(pred)
                # Masked sums, not boolean indexing: no wait for the device's count. Invalid
                # pixels are zeroed before any arithmetic, so no NaN reaches the gradient.
                pred, target = torch.where(valid, pred, 0.0), torch.where(valid, target, 0.0)
                error = (pred.clip(0, self.max_depth) - target).abs() * valid
                total = total + error.sum() / global_mean_denominator(valid.sum())
        return self.loss_weight * total / len(depth_preds)
