"""Packing per-camera feature pyramids into the aggregation op's layout."""

import torch
from torch import Tensor


def pack_feature_maps(levels: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Per level [B, N, C, H_l, W_l] -> the op's inputs.

    Returns:
        tuple: features [B, N * sum(H_l W_l), C] (camera-major, then level, then row-major
        pixels, channels last), spatial_shape [N, L, 2] (H, W) int64 and scale_start_index
        [N, L] int64 (where each camera's level starts). The two index tensors are shared
        between calls with the same shapes (read-only) and kept for the process's life: made
        once per shape and device, so a frame copies nothing from the host and a captured
        CUDA graph can keep pointing at them.
    """
    batch, cams, channels = levels[0].shape[:3]
    flat = [level.flatten(3).transpose(2, 3) for level in levels]  # [B, N, HW, C]
    features = torch.cat(flat, dim=2).reshape(batch, -1, channels)
    device = levels[0].device
    shapes = tuple(tuple(int(s) for s in level.shape[-2:]) for level in levels)
    tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
    if (
        tracing
        or torch.compiler.is_compiling()
        or torch._guards.detect_fake_mode(levels) is not None
    ):
        # Exported graphs keep the camera count dynamic (computed in the graph); fake
        # tensors (torch.export, compilation) must not enter the cache, and a compiled frame
        # holds the index as constants of its own (no graph break on the cache lookup).
        return (features, *_level_index(shapes, levels[0].shape[1], device))
    key = (shapes, int(cams), device)
    if key not in _LEVEL_INDEX:
        # Made outside inference mode: the aggregation saves them for a later backward.
        with torch.inference_mode(False):
            _LEVEL_INDEX[key] = _level_index(shapes, int(cams), device)
    return (features, *_LEVEL_INDEX[key])


# (level shapes, cameras, device) -> (spatial_shape, scale_start_index); a handful per process.
_LEVEL_INDEX: dict[tuple, tuple[Tensor, Tensor]] = {}


def _level_index(shapes, cams, device: torch.device) -> tuple[Tensor, Tensor]:
    sizes_hw = torch.tensor(shapes, dtype=torch.int64, device=device)
    spatial_shape = sizes_hw[None].expand(cams, -1, -1).contiguous()
    sizes = sizes_hw.prod(-1)
    starts = torch.cumsum(sizes, 0) - sizes
    scale_start_index = torch.arange(cams, device=device)[:, None] * sizes.sum() + starts[None]
    return spatial_shape, scale_start_index
