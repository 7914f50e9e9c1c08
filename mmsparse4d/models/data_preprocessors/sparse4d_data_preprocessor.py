"""Moving a batch of multi-camera samples to the device, normalised and stacked."""

from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from ...registry import MODELS

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class Sparse4DDataPreprocessor(BaseDataPreprocessor):
    """Stacks the samples' cameras into [B, N, ...] tensors on the device and normalises the
    images there (uint8 travels from the workers, a quarter of float32's bytes).

    Samples with fewer cameras than the batch's largest are padded: zero images, all-zero
    projection matrices (every point is behind such a camera, so nothing is sampled from it)
    and ``camera_mask`` False (no aggregation weight).

    Input ``inputs`` (as ``pseudo_collate`` makes them, or already stacked tensors): ``img``
    [N, 3, H, W] uint8 per sample, ``projection_mat`` [N, 4, 4], ``image_wh`` [N, 2],
    ``timestamp``, optional ``focal`` [N] and ``depth_targets`` (per stride [N, h, w]).

    Output ``inputs``: ``img`` float [B, N, 3, H, W], ``projection_mat`` [B, N, 4, 4],
    ``image_wh`` [B, N, 2], ``timestamp`` float64 [B], ``camera_mask`` bool [B, N] and, when
    given, ``focal`` [B, N] and ``depth_targets`` (per stride [B * N, h, w], -1 padding).

    Args:
        mean, std: per channel, in the images' channel order (RGB).
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 non_blocking: bool = True):  # fmt: skip
        super().__init__(non_blocking)
        self.register_buffer('mean', torch.tensor(mean).reshape(1, 1, 3, 1, 1), False)
        self.register_buffer('std', torch.tensor(std).reshape(1, 1, 3, 1, 1), False)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data['inputs']
        if isinstance(inputs['img'], Tensor) and inputs['img'].dim() == 5:
            batch = inputs['img'].shape[0]
            counts = [inputs['img'].shape[1]] * batch
            stacked = {k: v for k, v in inputs.items() if k != 'depth_targets'}
        else:
            counts = [len(img) for img in inputs['img']]
            stacked = self._stack(inputs, counts)
        stacked = self.cast_data(stacked)
        most = max(counts)
        if 'camera_mask' not in stacked:
            stacked['camera_mask'] = (
                torch.arange(most, device=self.device)[None]
                < torch.tensor(counts, device=self.device)[:, None]
            )
        stacked['img'] = (stacked['img'].float() - self.mean) / self.std
        stacked['timestamp'] = torch.as_tensor(
            stacked['timestamp'], dtype=torch.float64, device=self.device
        ).reshape(-1)
        if inputs.get('depth_targets') is not None:
            stacked['depth_targets'] = self.cast_data(self._depth(inputs['depth_targets'], most))
        return {'inputs': stacked, 'data_samples': self.cast_data(data.get('data_samples'))}

    @staticmethod
    def _stack(inputs: dict, counts: list[int]) -> dict:
        shapes = {tuple(img.shape[1:]) for img in inputs['img']}
        if len(shapes) != 1:
            raise ValueError(
                'Sparse4DDataPreprocessor: the samples of a batch need one image size (set '
                f'MultiViewImageAugmentation.final_size), got {sorted(shapes)}'
            )
        most = max(counts)

        def pad(tensors: list[Tensor], fill: float) -> Tensor:
            out = tensors[0].new_full((len(tensors), most, *tensors[0].shape[1:]), fill)
            for index, tensor in enumerate(tensors):
                out[index, : len(tensor)] = tensor
            return out

        stacked = {
            'img': pad(inputs['img'], 0),
            'projection_mat': pad(inputs['projection_mat'], 0.0),
            'image_wh': pad(inputs['image_wh'], 1.0),
            'timestamp': torch.stack(
                [torch.as_tensor(t, dtype=torch.float64) for t in inputs['timestamp']]
            ),  # fmt: skip
        }
        if inputs.get('focal') is not None:
            stacked['focal'] = pad(inputs['focal'], 1.0)
        return stacked

    @staticmethod
    def _depth(depth_targets, most: int) -> list[Tensor]:
        """pseudo_collate gives per level a list over samples of [N_i, h, w]."""
        levels = []
        for per_sample in depth_targets:
            padded = [
                torch.cat([t, t.new_full((most - len(t), *t.shape[1:]), -1.0)]) for t in per_sample
            ]
            levels.append(torch.cat(padded))
        return levels
