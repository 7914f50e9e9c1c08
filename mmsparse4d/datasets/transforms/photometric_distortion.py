"""Photometric distortion of each camera's image independently (training augmentation)."""

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from ...structures.multiview_batch import NEUTRAL_COLOURS

_LEVELS = np.arange(256, dtype=np.float32)
_IDENTITY = np.arange(256, dtype=np.uint8)


def distort_colours(
    image: np.ndarray,
    brightness: float = 0.0,
    contrast: float = 1.0,
    saturation: float | None = None,
    hue: float | None = None,
) -> np.ndarray:
    """One uint8 RGB image [H, W, 3] with brightness added, then contrast multiplied (clipped
    to [0, 255], truncated to uint8), then, where given, the HSV saturation multiplied and
    the hue shifted (OpenCV's 0-180 hue). Each step is a function of a pixel's level alone,
    so it runs as a 256-entry lookup table: the same numbers as the float arithmetic,
    several times faster."""
    if brightness != 0.0 or contrast != 1.0:
        table = np.clip((_LEVELS + brightness) * contrast, 0, 255).astype(np.uint8)
        image = cv2.LUT(image, table)
    if saturation is None and hue is None:
        return image
    # One table per HSV channel, applied in one pass (indexing each channel with numpy
    # costs nearly three times as much).
    tables = np.repeat(_IDENTITY[:, None], 3, axis=1)
    if hue is not None:
        tables[:, 0] = ((_LEVELS + hue) % 180).astype(np.uint8)
    if saturation is not None:
        tables[:, 1] = np.clip(_LEVELS * saturation, 0, 255).astype(np.uint8)
    hsv = cv2.LUT(cv2.cvtColor(image, cv2.COLOR_RGB2HSV), tables[:, None, :])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


@TRANSFORMS.register_module()
class MultiViewPhotometricDistortion(BaseTransform):
    """Random brightness, contrast, saturation and hue, each applied independently with
    probability 1/2, per camera (cameras differ in exposure and white balance). Images stay
    uint8 RGB.

    Args:
        brightness_delta, contrast_range, saturation_range, hue_delta: the draws' ranges
            (the hue in OpenCV's units, 180 to a full turn).
        apply: ``'host'`` changes the images here (256-entry tables and OpenCV's uint8
            HSV); ``'device'`` only draws, adding ``colour_distortion`` [N, 4] float32
            (brightness, contrast, saturation, hue; a draw not taken is neutral) for
            ``Sparse4DDataPreprocessor`` to apply to the batch on the device
            (``distort_colours_on_device``, float32, after a device warp): the data
            workers' second largest cost. The device rounds nothing where the host keeps
            uint8 levels (its HSV round trip alone moves a pixel by up to 5 levels).
    """

    APPLY_MODES = ('host', 'device')

    def __init__(
        self,
        brightness_delta=32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta=18,
        apply='host',
    ):
        if apply not in self.APPLY_MODES:
            raise ValueError(
                f'MultiViewPhotometricDistortion: apply={apply!r}, expected one of '
                f'{self.APPLY_MODES}'
            )
        self.brightness_delta = brightness_delta
        self.contrast_range = contrast_range
        self.saturation_range = saturation_range
        self.hue_delta = hue_delta
        self.apply = apply

    def _draw(self) -> tuple[float | None, ...]:
        """(brightness, contrast, saturation, hue), each None with probability 1/2."""

        def maybe(draw):
            return draw() if np.random.rand() < 0.5 else None

        brightness = maybe(lambda: np.random.uniform(-self.brightness_delta, self.brightness_delta))
        contrast = maybe(lambda: np.random.uniform(*self.contrast_range))
        saturation = maybe(lambda: np.random.uniform(*self.saturation_range))
        hue = maybe(lambda: np.random.uniform(-self.hue_delta, self.hue_delta))
        return brightness, contrast, saturation, hue

    def transform(self, results: dict) -> dict:
        draws = [self._draw() for _ in results['img']]
        if self.apply == 'device':
            results['colour_distortion'] = np.array(
                [
                    [
                        neutral if value is None else value
                        for value, neutral in zip(draw, NEUTRAL_COLOURS, strict=True)
                    ]
                    for draw in draws
                ],
                dtype=np.float32,
            ).reshape(-1, 4)
            return results
        results['img'] = [
            distort_colours(
                image,
                0.0 if brightness is None else brightness,
                1.0 if contrast is None else contrast,
                saturation,
                hue,
            )
            for image, (brightness, contrast, saturation, hue) in zip(
                results['img'], draws, strict=True
            )
        ]
        return results
