"""Packing per-camera feature pyramids into the aggregation op's layout."""

import torch
from torch import Tensor


def pack_feature_maps(levels: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Per level [B, N, C, H_l, W_l] -> the op's inputs.

    Returns:
        tuple: features [B, N * sum(H_l W_l), C] (camera-major, then level, then row-major
        pixels, channels last), spatial_shape [N, L, 2] (H, W) int64 and scale_start_index
        [N, L] int64 (where each camera's level starts).
    """
    batch, cams, channels = levels[0].shape[:3]
    flat = [level.flatten(3).transpose(2, 3) for level in levels]  # [B, N, HW, C]
    features = torch.cat(flat, dim=2).reshape(batch, -1, channels)
    device = levels[0].device
    shapes = torch.tensor([level.shape[-2:] for level in levels], dtype=torch.int64, device=device)
    spatial_shape = shapes[None].expand(cams, -1, -1).contiguous()
    sizes = shapes.prod(-1)
    per_camera = sizes.sum()
    starts = torch.cumsum(sizes, 0) - sizes
    scale_start_index = torch.arange(cams, device=device)[:, None] * per_camera + starts[None]
    return features, spatial_shape, scale_start_index
