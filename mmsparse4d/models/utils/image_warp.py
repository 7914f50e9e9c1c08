"""Affine image warps on the device: the training augmentation's warp, moved off the data
workers (``MultiViewImageAugmentation(warp_images='device')``)."""

import torch
import torch.nn.functional as F
from torch import Tensor


def warp_images(images: Tensor, warps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear samples of every camera's image at the pixels an affine map gives.

    Args:
        images: [B, N, C, H, W], any real dtype (uint8 from the data workers).
        warps: [B, N, 2, 3] output pixel (x, y, 1) -> input pixel (x, y), pixel centres at
            integers: the inverse of the map ``cv2.warpAffine`` takes. All-zero for a padded
            camera (it samples its black pixel (0, 0)).
        size: output (W, H).

    Returns:
        Tensor: float32 [B, N, C, H_out, W_out]; 0 where a sample falls outside the input
        (``cv2.warpAffine``'s constant border), blended with 0 within half a pixel of its
        edge. ``cv2.warpAffine`` rounds the coordinates to 1/32 pixel and the weights to
        fixed point; this does neither.
    """
    batch, cams, channels, height, width = images.shape
    width_out, height_out = size
    device = images.device
    ys, xs = torch.meshgrid(
        torch.arange(height_out, device=device, dtype=torch.float32),
        torch.arange(width_out, device=device, dtype=torch.float32),
        indexing='ij',
    )
    pixels = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # [P, 3]
    source = torch.einsum('bnij,pj->bnpi', warps.float(), pixels)  # [B, N, P, 2]
    # grid_sample's -1 and 1 are the outer edges of the first and last pixels (divided by
    # Python numbers: a tensor of them would be a host copy every batch).
    x, y = (2 * source + 1).unbind(-1)
    grid = torch.stack([x / width, y / height], dim=-1) - 1
    sampled = F.grid_sample(
        images.reshape(batch * cams, channels, height, width).float(),
        grid.reshape(batch * cams, height_out, width_out, 2),
        mode='bilinear',
        padding_mode='zeros',
        align_corners=False,
    )
    return sampled.reshape(batch, cams, channels, height_out, width_out)
