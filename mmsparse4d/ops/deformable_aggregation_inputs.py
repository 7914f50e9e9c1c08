"""Packing metadata and random inputs for the MSDA operator (tests and benchmarks)."""

from collections.abc import Sequence

import torch
from torch import Tensor

LevelShapes = Sequence[tuple[int, int]]


def camera_level_shapes(
    image_hw: tuple[int, int], strides: Sequence[int] = (4, 8, 16, 32)
) -> list[tuple[int, int]]:
    """(H, W) of each FPN level of one camera: ceil(size / stride), as strided convs give.

    Args:
        image_hw: input image (H, W) in pixels, e.g. (544, 960).
        strides: the levels' strides in pixels.
    """
    return [(-(-image_hw[0] // s), -(-image_hw[1] // s)) for s in strides]


def pack_spatial_shapes(
    cam_level_shapes: Sequence[LevelShapes], device: torch.device | str = 'cpu'
) -> tuple[Tensor, Tensor]:
    """``spatial_shape`` and ``scale_start_index`` of cameras packed camera-major.

    Args:
        cam_level_shapes: per camera, per level, (H, W) in pixels. Every camera has the
            same number of levels; sizes may differ between cameras.

    Returns:
        tuple[Tensor, Tensor]: spatial_shape [N, L, 2] int64 and scale_start_index
        [N, L] int64 (exclusive cumulative sum of H*W over cameras, then levels).
    """
    levels = {len(shapes) for shapes in cam_level_shapes}
    if len(levels) != 1:
        raise ValueError(f'every camera needs the same number of levels, got {sorted(levels)}')
    spatial_shape = torch.tensor(cam_level_shapes, dtype=torch.int64, device=device)
    sizes = spatial_shape.prod(-1).flatten()
    starts = torch.cumsum(sizes, 0) - sizes
    return spatial_shape, starts.reshape(spatial_shape.shape[:2])


def random_deformable_aggregation_inputs(
    batch: int,
    cam_level_shapes: Sequence[LevelShapes],
    anchors: int,
    points: int,
    groups: int,
    channels: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = 'cpu',
    inside_fraction: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Random inputs with about ``inside_fraction`` of the samples strictly inside (0, 1).

    Values are drawn in float64 on ``device`` (with ``generator``, which must live there)
    and then rounded to ``dtype``.

    Returns:
        tuple: features [B, F, C], spatial_shape [N, L, 2], scale_start_index [N, L],
        sampling_location [B, A, P, N, 2], weights [B, A, P, N, L, G] (softmax over
        points, cameras and levels, as the model produces them).
    """
    spatial_shape, scale_start_index = pack_spatial_shapes(cam_level_shapes, device)
    cams, levels = spatial_shape.shape[:2]
    pixels = int(spatial_shape.prod(-1).sum())

    def rand(*shape):
        # The generator, when given, lives on `device`.
        return torch.rand(*shape, generator=generator, dtype=torch.float64, device=device)

    features = (rand(batch, pixels, channels) * 2 - 1).to(dtype)
    # A sample is inside with probability inside_fraction when each axis is inside with
    # its square root; the outside ones spread over (-0.5, 0) and (1, 1.5).
    axis_inside = inside_fraction**0.5
    location = rand(batch, anchors, points, cams, 2)
    outside = rand(batch, anchors, points, cams, 2) > axis_inside
    spill = rand(batch, anchors, points, cams, 2) * 0.5
    location = torch.where(outside, torch.where(location < 0.5, -spill, 1 + spill), location)
    logits = rand(batch, anchors, points * cams * levels, groups)
    weights = logits.softmax(dim=2).reshape(batch, anchors, points, cams, levels, groups)
    return (
        features.contiguous(),
        spatial_shape,
        scale_start_index,
        location.to(dtype).contiguous(),
        weights.to(dtype).contiguous(),
    )


def clustered_locations(
    location: Tensor,
    spread: float,
    generator: torch.Generator | None = None,
    seen_fraction: float = 1.0,
) -> Tensor:
    """Locations shaped like ``location`` ([B, A, P, N, 2]) with each anchor's P points
    within ``spread`` (a fraction of the image) of one random centre per camera, as a box's
    key points lie, so that the coarse levels' pixels gather many samples. A camera sees
    the anchor with probability ``seen_fraction``, else all its points lie outside that
    image. Drawn in float64 on ``location``'s device (with ``generator``, which must live
    there), returned in its dtype.
    """
    batch, anchors, points, cams, _ = location.shape

    def rand(*size):
        return torch.rand(*size, generator=generator, device=location.device, dtype=torch.float64)

    centre = rand(batch, anchors, 1, cams, 2) * (1 - spread) + spread / 2
    points_at = centre + (rand(batch, anchors, points, cams, 2) - 0.5) * spread
    seen = rand(batch, anchors, 1, cams, 1) < seen_fraction
    return torch.where(seen, points_at, points_at + 2.0).to(location.dtype).contiguous()
