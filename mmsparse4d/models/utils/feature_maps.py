"""Packing per-camera feature pyramids into the aggregation op's layout."""

from functools import lru_cache

import torch
from torch import Tensor


def pack_feature_maps(levels: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Per level [B, N, C, H_l, W_l] -> the op's inputs.

    Returns:
        tuple: features [B, N * sum(H_l W_l), C] (camera-major, then level, then row-major
        pixels, channels last), spatial_shape [N, L, 2] (H, W) int64 and scale_start_index
        [N, L] int64 (where each camera's level starts). The two index tensors are shared
        between calls with the same shapes (read-only): they are made once per shape and
        device, so a frame copies nothing from the host (what CUDA graph capture needs).
    """
    batch, cams, channels = levels[0].shape[:3]
    flat = [level.flatten(3).transpose(2, 3) for level in levels]  # [B, N, HW, C]
    features = torch.cat(flat, dim=2).reshape(batch, -1, channels)
    device = levels[0].device
    shapes = tuple(tuple(int(s) for s in level.shape[-2:]) for level in levels)
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        # An exported graph keeps the camera count as a dynamic axis: computed in the graph.
        return (features, *_level_index(shapes, levels[0].shape[1], device))
    return (features, *_cached_level_index(shapes, int(cams), device))


def _level_index(shapes, cams, device: torch.device) -> tuple[Tensor, Tensor]:
    sizes_hw = torch.tensor(shapes, dtype=torch.int64, device=device)
    spatial_shape = sizes_hw[None].expand(cams, -1, -1).contiguous()
    sizes = sizes_hw.prod(-1)
    starts = torch.cumsum(sizes, 0) - sizes
    scale_start_index = torch.arange(cams, device=device)[:, None] * sizes.sum() + starts[None]
    return spatial_shape, scale_start_index


@lru_cache(maxsize=64)
def _cached_level_index(shapes, cams: int, device: torch.device) -> tuple[Tensor, Tensor]:
    return _level_index(shapes, cams, device)
