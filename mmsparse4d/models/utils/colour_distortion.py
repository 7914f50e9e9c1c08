"""Per-camera photometric distortion on the device: the training augmentation's colour
changes, moved off the data workers (``MultiViewPhotometricDistortion(apply='device')``)."""

import torch
from torch import Tensor


def distort_colours_on_device(images: Tensor, colours: Tensor) -> Tensor:
    """Brightness added, then contrast multiplied (clipped to [0, 255]), then the HSV
    saturation multiplied (clipped to [0, 1]) and the hue shifted, per camera: what
    ``photometric_distortion.distort_colours`` does to a uint8 image, in float32.

    Args:
        images: [B, N, 3, H, W] RGB levels in [0, 255], any real dtype.
        colours: [B, N, 4] per camera (brightness, contrast, saturation, hue), the hue in
            OpenCV's units (180 to a full turn); ``structures.NEUTRAL_COLOURS`` changes
            nothing.

    Returns:
        Tensor: float32 [B, N, 3, H, W] in [0, 255]. The host version rounds the levels to
        integers after the contrast and keeps OpenCV's uint8 HSV (the hue in 2-degree steps,
        saturation and value in 1/255); this rounds nothing.
    """
    per_camera = colours.float()[..., None, None]  # [B, N, 4, 1, 1]
    brightness, contrast, saturation, hue = per_camera.unbind(2)
    rgb = ((images.float() + brightness[:, :, None]) * contrast[:, :, None]).clamp(0, 255)
    red, green, blue = rgb.unbind(2)
    value = rgb.amax(2)
    spread = value - rgb.amin(2)
    safe_spread = torch.where(spread > 0, spread, 1.0)
    # Hue in sextants [0, 6): which channel is largest, and where between its neighbours.
    sextant = torch.where(
        value == red,
        ((green - blue) / safe_spread) % 6,
        torch.where(
            value == green, (blue - red) / safe_spread + 2, (red - green) / safe_spread + 4
        ),
    )
    sextant = torch.where(spread > 0, sextant, 0.0)
    chroma = torch.where(value > 0, spread / torch.where(value > 0, value, 1.0), 0.0)
    chroma = (chroma * saturation).clamp(0, 1)
    sextant = (sextant + hue / 30.0) % 6  # 30 OpenCV hue units to a sextant
    # HSV -> RGB: channel n is V (1 - S clamp(min(k, 4 - k), 0, 1)), k = (n + h) mod 6.
    # n = 5, 3, 1 for R, G, B, made on the device (a tensor of Python numbers is a host copy).
    offsets = torch.arange(5.0, 0.0, -2.0, device=images.device)[:, None, None]
    k = (sextant[:, :, None] + offsets) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return value[:, :, None] * (1 - chroma[:, :, None] * ramp)
