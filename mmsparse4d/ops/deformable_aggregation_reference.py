"""Pure-PyTorch reference of the MSDA operator, built on ``grid_sample``.

It is the oracle of the compiled kernels' tests and the explicitly chosen fallback where
the extension is not built. It reads ``spatial_shape`` and ``scale_start_index`` on the
host, so it synchronises with the device once per call.

``deformable_aggregation_grid_sample`` is NVIDIA TAO's aggregation where its compiled op is
not used (``use_deformable_func=False``): ``grid_sample`` at every location, without the
operator's test that a location lies inside (0, 1). A location within half a feature cell
outside the image then still takes the border cells' share that bilinear sampling with
zero padding gives it (at a 4-cell-wide level, an eighth of the width on each side), and
NaN is passed to ``grid_sample``. A compatibility setting, for checkpoints trained on that
path.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def deformable_aggregation_reference(
    features: Tensor,
    spatial_shape: Tensor,
    scale_start_index: Tensor,
    sampling_location: Tensor,
    weights: Tensor,
    inside_only: bool = True,
) -> Tensor:
    """Same contract as :func:`mmsparse4d.ops.deformable_aggregation`.

    Args:
        features (Tensor): [B, F, C].
        spatial_shape (Tensor): [N, L, 2] (H, W).
        scale_start_index (Tensor): [N, L].
        sampling_location (Tensor): [B, A, P, N, 2] normalised (x, y).
        weights (Tensor): [B, A, P, N, L, G].

        inside_only (bool): sample only locations inside (0, 1) on both axes, as the
            operator does; False: every location (``deformable_aggregation_grid_sample``).

    Returns:
        Tensor: [B, A, C].
    """
    batch, _, channels = features.shape
    anchors, points = sampling_location.shape[1:3]
    groups = weights.shape[5]
    if inside_only:
        # Written so that NaN fails the comparison and the sample is dropped.
        valid = ((sampling_location > 0) & (sampling_location < 1)).all(dim=-1)  # [B, A, P, N]
        grid = torch.where(valid[..., None], sampling_location * 2 - 1, 0.0)
    else:
        valid = torch.ones_like(sampling_location[..., 0], dtype=torch.bool)
        grid = sampling_location * 2 - 1
    output = features.new_zeros((batch, anchors, channels))
    for cam, (cam_shapes, cam_starts) in enumerate(
        zip(spatial_shape.tolist(), scale_start_index.tolist(), strict=True)
    ):
        cam_valid = valid[:, :, :, cam]  # [B, A, P]
        for level, ((height, width), start) in enumerate(zip(cam_shapes, cam_starts, strict=True)):
            level_map = features[:, start : start + height * width]
            level_map = level_map.reshape(batch, height, width, channels).permute(0, 3, 1, 2)
            sampled = F.grid_sample(
                level_map,
                grid[:, :, :, cam],
                mode='bilinear',
                padding_mode='zeros',
                align_corners=False,
            )  # [B, C, A, P]; channel c belongs to group c // (C / G)
            sampled = sampled.reshape(batch, groups, channels // groups, anchors, points)
            level_weights = torch.where(cam_valid[..., None], weights[:, :, :, cam, level], 0.0)
            output = output + torch.einsum('bgdap,bapg->bagd', sampled, level_weights).reshape(
                batch, anchors, channels
            )
    return output


def deformable_aggregation_grid_sample(
    features: Tensor,
    spatial_shape: Tensor,
    scale_start_index: Tensor,
    sampling_location: Tensor,
    weights: Tensor,
) -> Tensor:
    """TAO's aggregation without its compiled op (see the module docstring); the contract
    of :func:`deformable_aggregation_reference`."""
    return deformable_aggregation_reference(
        features, spatial_shape, scale_start_index, sampling_location, weights, inside_only=False
    )
