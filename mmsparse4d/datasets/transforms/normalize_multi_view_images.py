"""Normalise every camera's image on the CPU (the model's data preprocessor does the same
on the device, which is the default; use this where inputs must leave the loader as floats)."""

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class NormalizeMultiViewImages(BaseTransform):
    """``img`` becomes float32 (img - mean) / std per channel, RGB order.

    Args:
        mean, std: per RGB channel, in 0-255 units (ImageNet's by default).
    """

    def __init__(self, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if self.mean.shape != (3,) or self.std.shape != (3,) or (self.std <= 0).any():
            raise ValueError('NormalizeMultiViewImages: mean and std need 3 values, std > 0')

    def transform(self, results: dict) -> dict:
        results['img'] = [
            (image.astype(np.float32) - self.mean) / self.std for image in results['img']
        ]
        return results
