"""Moving a batch of multi-camera samples to the device, normalised and stacked."""

from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from ...registry import MODELS
from ...structures import pad_cameras, stack_depth_targets, stack_multiview_inputs
from ..utils import distort_colours_on_device, to_device, warp_images

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class Sparse4DDataPreprocessor(BaseDataPreprocessor):
    """Stacks the samples' cameras into [B, N, ...] tensors on the device and normalises the
    images there (uint8 travels from the workers, a quarter of float32's bytes).

    Samples with fewer cameras than the batch's largest are padded: zero images, all-zero
    projection matrices (every point is behind such a camera, so nothing is sampled from it)
    and ``camera_mask`` False (no aggregation weight).

    Input ``inputs``: per sample, as ``pseudo_collate`` makes them (``img`` [N, 3, H, W]
    uint8, ``projection_mat`` [N, 4, 4], ``image_wh`` [N, 2], ``timestamp``, optional
    ``focal`` [N] and ``depth_targets``), or stacked [B, N, ...] tensors: by
    ``multiview_collate`` in the data workers (with ``camera_mask``; the synthetic configs'
    choice, which spares the training process the stacking copy) or by a caller (one camera
    count when without ``camera_mask``).

    Images that arrive with ``image_warp`` [B, N, 2, 3] (output pixel -> input pixel;
    ``MultiViewImageAugmentation(warp_images='device')``) are warped here, to the largest
    ``image_wh`` of the batch (``warp_images``), before they are normalised; ``image_warp``
    is not passed on. Images with ``colour_distortion`` [B, N, 4]
    (``MultiViewPhotometricDistortion(apply='device')``) then get their brightness,
    contrast, saturation and hue changed here (``distort_colours_on_device``).

    Output ``inputs``: ``img`` float [B, N, 3, H, W], ``projection_mat`` [B, N, 4, 4],
    ``image_wh`` [B, N, 2], ``timestamp`` float64 [B] (on the host), ``camera_mask`` bool
    [B, N], where a camera is padded ``real_cameras`` [R] (int64: the indices of the real
    ones among the B * N, found on the host) and, when given, ``focal`` [B, N] and
    ``depth_targets`` (per stride [B * N, h, w], -1 padding).
    Host tensors go to a CUDA device from pinned memory without waiting for the device
    (``non_blocking``; the pinning copy runs here unless the data loader's ``pin_memory``
    pinned them already, in its own thread).

    ``data_samples`` are returned as given (on the host from a data loader): the detector
    moves the ground truth it trains on in one copy per field (``Sparse4D.targets``), where
    moving every sample's fields would be a copy each.

    Args:
        mean, std: per channel, in the images' channel order (RGB).
        pad_cameras_to: pad every batch's camera axis to this count (``pad_cameras``; the
            backbone still sees the real images alone), so that the decoders see the same
            shapes in every batch, as a CUDA graph of them needs; None: the batch's most.
    """

    def __init__(
        self,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        non_blocking: bool = True,
        pad_cameras_to: int | None = None,
    ):
        super().__init__(non_blocking)
        self.pad_cameras_to = pad_cameras_to
        self.register_buffer('mean', torch.tensor(mean).reshape(1, 1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).reshape(1, 1, 3, 1, 1), False)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if isinstance(inputs['img'], Tensor) and inputs['img'].dim() == 5:
            # Stacked: by multiview_collate in the workers (with camera_mask), or by a caller.
            batch, cams = inputs['img'].shape[:2]
            stacked = {k: v for k, v in inputs.items() if k != 'depth_targets'}
            if 'camera_mask' not in stacked:
                stacked['camera_mask'] = torch.ones(batch, cams, dtype=torch.bool)
            # float64 before anything else: seconds since an epoch need it.
            stacked['timestamp'] = torch.as_tensor(inputs['timestamp'], dtype=torch.float64)
            depth = inputs.get('depth_targets')
            if depth is not None:  # per stride: [B * N, h, w] already, or per sample
                stacked['depth_targets'] = (
                    depth
                    if all(isinstance(level, Tensor) for level in depth)
                    else stack_depth_targets(depth, cams)
                )
        else:
            stacked = stack_multiview_inputs(inputs)
        mask = stacked['camera_mask']
        if self.pad_cameras_to is not None:  # the mask on the host; the rest after the move
            mask = pad_cameras({'camera_mask': mask}, self.pad_cameras_to)['camera_mask']
        padded = ~mask
        if padded.any():  # a host tensor here: no device synchronisation
            # The detector's backbone runs on these images only (Sparse4D.extract_feat).
            stacked['real_cameras'] = torch.nonzero(~padded.flatten()).flatten()
        # The timestamps stay on the host: the instance bank's frame checks read them there
        # (from the device, every step would wait for it).
        warp_size = None
        if 'image_warp' in stacked:  # the output size, read on the host (from the device: a wait)
            width, height = torch.as_tensor(stacked['image_wh']).reshape(-1, 2).amax(0).tolist()
            warp_size = (int(width), int(height))
        stacked = {
            key: value if key == 'timestamp' else self._move(value)
            for key, value in stacked.items()
        }
        if self.pad_cameras_to is not None:
            stacked = pad_cameras(stacked, self.pad_cameras_to)
        if warp_size is not None:
            stacked['img'] = warp_images(stacked['img'], stacked.pop('image_warp'), warp_size)
        if 'colour_distortion' in stacked:  # after the warp, as on the host
            colours = stacked.pop('colour_distortion')
            stacked['img'] = distort_colours_on_device(stacked['img'], colours)
        stacked['img'] = (stacked['img'].float() - self.mean) / self.std
        stacked['timestamp'] = torch.as_tensor(stacked['timestamp'], dtype=torch.float64).reshape(
            -1
        )
        return {'inputs': stacked, 'data_samples': data.get('data_samples')}

    def _move(self, value):
        if isinstance(value, (list, tuple)):
            return [self._move(item) for item in value]
        if not isinstance(value, Tensor):
            return value
        if not self._non_blocking:
            return value.to(self.device)
        return to_device(value, self.device)  # from pinned memory, without waiting
