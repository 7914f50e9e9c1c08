"""Features of each instance seen from each camera, sampled at its key points."""

import torch.nn.functional as F
from torch import Tensor


def sample_per_camera(levels: list[Tensor], locations: Tensor, weights: Tensor) -> Tensor:
    """Per-camera instance features [B, A, N, C]: the bilinear samples of every level at the
    key points' projections, weighted by the aggregation weights and summed over levels and
    points but not over cameras (the aggregation op sums over cameras too).

    Args:
        levels: per level [B, N, C, H, W].
        locations: [B, A, P, N, 2] normalised (x along the width); only locations strictly
            inside (0, 1) contribute, as in the op.
        weights: [B, A, P, N, L, G]; channel c uses group c // (C / G).
    """
    batch, anchors, points, cams = locations.shape[:4]
    channels = levels[0].shape[2]
    groups = weights.shape[-1]
    inside = ((locations > 0) & (locations < 1)).all(dim=-1)  # [B, A, P, N]
    grid = (
        locations.nan_to_num(-1.0).permute(0, 3, 1, 2, 4).reshape(batch * cams, anchors, points, 2)
    )
    grid = grid * 2 - 1
    total = None
    for index, level in enumerate(levels):
        sampled = F.grid_sample(level.flatten(0, 1), grid.to(level.dtype), align_corners=False)
        sampled = sampled.reshape(batch, cams, groups, channels // groups, anchors, points)
        weight = weights[..., index, :] * inside[..., None]  # [B, A, P, N, G]
        weight = weight.permute(0, 3, 4, 1, 2)[:, :, :, None]  # [B, N, G, 1, A, P]
        part = (sampled * weight.to(sampled.dtype)).sum(-1)  # [B, N, G, C/G, A]
        total = part if total is None else total + part
    return total.reshape(batch, cams, channels, anchors).permute(0, 3, 1, 2)
