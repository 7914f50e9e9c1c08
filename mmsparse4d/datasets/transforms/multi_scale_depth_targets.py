"""Depth supervision at the feature strides of the dense depth branch."""

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiScaleDepthTargets(BaseTransform):
    """``depth_targets``: per stride a float32 [N, H / s, W / s] array of the depth (metres)
    at each cell's centre pixel, -1 where it is invalid (no return, below ``min_depth`` or
    beyond ``max_depth``). Run after the image augmentation so that the maps line up with
    the images the network sees."""

    def __init__(self, strides=(4, 8, 16), min_depth=0.5, max_depth=60.0):
        self.strides = tuple(strides)
        self.min_depth = min_depth
        self.max_depth = max_depth

    def transform(self, results: dict) -> dict:
        targets = []
        for stride in self.strides:
            maps = []
            for depth in results['depth']:
                height, width = depth.shape[0] // stride, depth.shape[1] // stride
                sampled = depth[stride // 2 :: stride, stride // 2 :: stride][:height, :width]
                valid = (sampled >= self.min_depth) & (sampled <= self.max_depth)
                maps.append(np.where(valid, sampled, -1.0).astype(np.float32))
            targets.append(np.stack(maps))
        results['depth_targets'] = targets
        return results
