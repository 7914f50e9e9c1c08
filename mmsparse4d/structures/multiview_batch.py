"""Stacking per-sample multi-camera inputs into batch tensors, padding the camera axis."""

import torch
from torch import Tensor

# Per-camera inputs and what a padded camera holds: a black image, an all-zero projection
# (every point is behind it, so nothing is sampled from it), a 1x1 size, focal length 1 and,
# for images warped on the device, an all-zero warp (every output pixel samples its black
# pixel (0, 0)); for colours distorted on the device, contrast 0 (black).
CAMERA_PADDING = {
    'img': 0,
    'projection_mat': 0.0,
    'image_wh': 1.0,
    'focal': 1.0,
    'image_warp': 0.0,
    'colour_distortion': 0.0,
}
# A camera's colour distortion that changes nothing: brightness + 0, contrast x 1,
# saturation x 1, hue + 0 (``MultiViewPhotometricDistortion(apply='device')``).
NEUTRAL_COLOURS = (0.0, 1.0, 1.0, 0.0)


def stack_multiview_inputs(inputs: dict) -> dict:
    """Per-sample inputs (as ``pseudo_collate`` gives them) -> batch tensors.

    Args:
        inputs: ``img`` per sample [N_b, 3, H, W] uint8, ``projection_mat`` [N_b, 4, 4],
            ``image_wh`` [N_b, 2], ``timestamp`` (seconds), optional ``focal`` [N_b],
            ``image_warp`` [N_b, 2, 3] (images still to be warped on the device) and
            ``depth_targets`` (per stride, per sample [N_b, h, w]).

    Returns:
        dict: ``img`` [B, N, 3, H, W] uint8 with N = max N_b, ``projection_mat``
        [B, N, 4, 4], ``image_wh`` [B, N, 2], ``focal`` [B, N] and ``image_warp``
        [B, N, 2, 3] (when given), ``timestamp``
        float64 [B], ``camera_mask`` bool [B, N] (False for padding) and ``depth_targets``
        (when given: per stride [B * N, h, w], -1 on padded cameras).

    Raises:
        ValueError: the samples' images differ in size.
    """
    shapes = {tuple(img.shape[1:]) for img in inputs['img']}
    if len(shapes) != 1:
        raise ValueError(
            'stack_multiview_inputs: the samples of a batch need one image size (set '
            "MultiViewImageAugmentation.final_size; with its warp_images='device' the "
            f'scenes of a batch must share one loaded size), got {sorted(shapes)}'
        )
    counts = [len(img) for img in inputs['img']]
    most = max(counts)
    stacked = {
        key: _pad_cameras(inputs[key], fill, most)
        for key, fill in CAMERA_PADDING.items()
        if inputs.get(key) is not None
    }
    stacked['timestamp'] = torch.stack(
        [torch.as_tensor(t, dtype=torch.float64) for t in inputs['timestamp']]
    )
    stacked['camera_mask'] = torch.arange(most)[None] < torch.tensor(counts)[:, None]
    if inputs.get('depth_targets') is not None:
        stacked['depth_targets'] = stack_depth_targets(inputs['depth_targets'], most)
    return stacked


def stack_depth_targets(depth_targets: list, most: int) -> list[Tensor]:
    """Per stride, per sample [N_b, h, w] (``pseudo_collate``'s order) -> per stride
    [B * most, h, w], -1 on padded cameras."""
    return [_pad_cameras(per_level, -1.0, most).flatten(0, 1) for per_level in depth_targets]


def _pad_cameras(tensors: list[Tensor], fill, most: int) -> Tensor:
    """[B, most, ...]: each sample's cameras copied once, only the padding filled (the
    batch's images are the largest copy a data worker or the slot loader's thread makes)."""
    out = tensors[0].new_empty((len(tensors), most, *tensors[0].shape[1:]))
    for index, tensor in enumerate(tensors):
        out[index, : len(tensor)] = tensor
        if len(tensor) < most:
            out[index, len(tensor) :] = fill
    return out


def pad_cameras(stacked: dict, count: int) -> dict:
    """Stacked inputs (``stack_multiview_inputs``' output, on any device) with the camera
    axis padded to ``count``, as ``CAMERA_PADDING`` pads it: ``camera_mask`` False and
    ``depth_targets`` (per stride [B * N, h, w]) -1 on the new cameras. A fixed camera count
    gives every batch the same shapes (one CUDA graph of the decoders).

    Raises:
        ValueError: a sample has more than ``count`` cameras.
    """
    batch, cams = stacked['camera_mask'].shape
    if cams > count:
        raise ValueError(
            f'pad_cameras: a batch holds {cams} cameras, more than the {count} to pad to '
            '(raise Sparse4DDataPreprocessor.pad_cameras_to to the most cameras of a scene)'
        )
    if cams == count:
        return stacked
    out = dict(stacked)
    fills = dict(CAMERA_PADDING, camera_mask=False)
    for key, fill in fills.items():
        if key in stacked:
            value = stacked[key]
            extra = value.new_full((batch, count - cams, *value.shape[2:]), fill)
            out[key] = torch.cat([value, extra], dim=1)
    if stacked.get('depth_targets') is not None:
        out['depth_targets'] = [
            torch.cat(
                [
                    level.reshape(batch, cams, *level.shape[1:]),
                    level.new_full((batch, count - cams, *level.shape[1:]), -1.0),
                ],
                dim=1,
            ).flatten(0, 1)
            for level in stacked['depth_targets']
        ]
    return out
