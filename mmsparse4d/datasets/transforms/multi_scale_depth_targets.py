"""Depth supervision at the feature strides of the dense depth branch."""

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiScaleDepthTargets(BaseTransform):
    """``depth_targets``: per stride a float32 [N, H / s, W / s] array of the depth (metres)
    at each cell's centre pixel, -1 where it is invalid (no return, below ``min_depth`` or
    beyond ``max_depth``). Run after the image augmentation so that the maps line up with
    the images the network sees.

    With the images' warp left to the device (``image_warp`` [N, 2, 3] present), the depth
    maps are still as loaded: each stride's cells are sampled straight through the warp
    (nearest, at ``image_wh``'s size over the stride), a few thousand pixels a camera
    instead of a whole warped map."""

    def __init__(self, strides=(4, 8, 16), min_depth=0.5, max_depth=60.0):
        self.strides = tuple(strides)
        self.min_depth = min_depth
        self.max_depth = max_depth

    def transform(self, results: dict) -> dict:
        warps = results.get('image_warp')
        targets = []
        for stride in self.strides:
            maps = []
            for index, depth in enumerate(results['depth']):
                if warps is None:
                    height, width = depth.shape[0] // stride, depth.shape[1] // stride
                    sampled = depth[stride // 2 :: stride, stride // 2 :: stride][:height, :width]
                else:
                    sampled = self._sample_through(
                        depth, warps[index], results['image_wh'][index], stride
                    )
                valid = (sampled >= self.min_depth) & (sampled <= self.max_depth)
                maps.append(np.where(valid, sampled, -1.0).astype(np.float32))
            targets.append(np.stack(maps))
        results['depth_targets'] = targets
        return results

    @staticmethod
    def _sample_through(depth: np.ndarray, warp: np.ndarray, image_wh, stride: int) -> np.ndarray:
        """The depth at each cell centre (pixel ``stride * cell + stride // 2`` of the warped
        image), found through ``warp`` (output pixel -> input pixel); 0 outside the map."""
        width, height = (int(size) // stride for size in image_wh)
        cell_to_pixel = np.array(
            [[stride, 0, stride // 2], [0, stride, stride // 2], [0, 0, 1]], dtype=np.float64
        )
        cell_to_input = np.asarray(warp, dtype=np.float64) @ cell_to_pixel
        return cv2.warpAffine(
            depth,
            cell_to_input,
            (width, height),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
