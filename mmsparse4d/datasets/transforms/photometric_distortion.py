"""Photometric distortion of each camera's image independently (training augmentation)."""

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiViewPhotometricDistortion(BaseTransform):
    """Random brightness, contrast, saturation and hue, each applied with probability 1/2,
    per camera (cameras differ in exposure and white balance). Images stay uint8 RGB."""

    def __init__(self, brightness_delta=32, contrast_range=(0.5, 1.5),
                 saturation_range=(0.5, 1.5), hue_delta=18):  # fmt: skip
        self.brightness_delta = brightness_delta
        self.contrast_range = contrast_range
        self.saturation_range = saturation_range
        self.hue_delta = hue_delta

    def _distort(self, image: np.ndarray) -> np.ndarray:
        image = image.astype(np.float32)
        if np.random.rand() < 0.5:
            image += np.random.uniform(-self.brightness_delta, self.brightness_delta)
        if np.random.rand() < 0.5:
            image *= np.random.uniform(*self.contrast_range)
        image = np.clip(image, 0, 255).astype(np.uint8)
        if np.random.rand() < 0.5 or np.random.rand() < 0.5:
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
            hsv[..., 1] = np.clip(hsv[..., 1] * np.random.uniform(*self.saturation_range), 0, 255)
            hsv[..., 0] = (hsv[..., 0] + np.random.uniform(-self.hue_delta, self.hue_delta)) % 180
            image = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
        return image

    def transform(self, results: dict) -> dict:
        results['img'] = [self._distort(image) for image in results['img']]
        return results
