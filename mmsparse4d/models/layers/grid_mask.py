"""GridMask image augmentation (training only), on the device."""

import torch
from mmengine.model import BaseModule
from torch import Tensor

from ...registry import MODELS


@MODELS.register_module()
class GridMask(BaseModule):
    """Keeps horizontal and vertical stripes of width ratio * d every d pixels (a random
    period d and offset per call) and zeroes the squares between them, with probability
    ``prob`` (Sparse4D's setting: stripes both ways, ratio 0.5, mode 1, no rotation).

    Input and output: [B, C, H, W].
    """

    def __init__(self, prob=0.7, ratio=0.5, use_h=True, use_w=True, init_cfg=None):
        super().__init__(init_cfg)
        self.prob, self.ratio, self.use_h, self.use_w = prob, ratio, use_h, use_w

    def _stripes(self, length: int, extended: int, period: int, start: int, device) -> Tensor:
        width = min(max(int(period * self.ratio + 0.5), 1), period - 1)
        index = torch.arange(extended, device=device) - start
        inside = (index >= 0) & (index % period < width) & (index // period < extended // period)
        offset = (extended - length) // 2
        return inside[offset : offset + length]

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or torch.rand(()) > self.prob:
            return x
        height, width = x.shape[-2:]
        period = int(torch.randint(2, max(height, 3), ()))
        rows = self._stripes(
            height, int(1.5 * height), period, int(torch.randint(period, ())), x.device
        )
        cols = self._stripes(
            width, int(1.5 * width), period, int(torch.randint(period, ())), x.device
        )
        keep = torch.zeros(height, width, dtype=torch.bool, device=x.device)
        if self.use_h:
            keep |= rows[:, None]
        if self.use_w:
            keep |= cols[None, :]
        return x * keep.to(x.dtype)
