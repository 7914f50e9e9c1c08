"""The photometric distortion on the device against OpenCV's float HSV and the host's uint8."""

import cv2
import numpy as np
import pytest
import torch

from mmsparse4d.datasets.transforms.photometric_distortion import distort_colours
from mmsparse4d.models.utils import distort_colours_on_device
from mmsparse4d.structures import NEUTRAL_COLOURS
from mmsparse4d.testing import rounding_tolerance

DRAWS = [(0, 1, 1, 0), (20, 1.3, 1, 0), (0, 1, 1.4, 0), (0, 1, 1, 12), (-25, 0.7, 0.6, -15)]
DRAWS += [(30, 1.5, 1.5, 18), (-32, 0.5, 0.5, -18)]
# A dozen float32 operations per pixel (levels up to 255), in another order than OpenCV's.
TOLERANCE = rounding_tolerance(torch.float32, depth=16, scale=255.0)


def random_image(seed=0, size=(40, 56)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def on_device(image: np.ndarray, draws) -> np.ndarray:
    """Each draw applied to ``image`` as one camera of a batch: [N, H, W, 3]."""
    images = torch.from_numpy(image).permute(2, 0, 1)[None, None].repeat(1, len(draws), 1, 1, 1)
    colours = torch.tensor([draws], dtype=torch.float32)
    return distort_colours_on_device(images, colours)[0].permute(0, 2, 3, 1).numpy()


def float_reference(image, brightness, contrast, saturation, hue):
    """The same distortion through OpenCV's float32 HSV (hue in degrees, S and V in 0-1)."""
    levels = np.clip((image.astype(np.float32) + brightness) * contrast, 0, 255) / 255
    hsv = cv2.cvtColor(levels.astype(np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + 2 * hue) % 360  # 2 degrees per OpenCV uint8 hue unit
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 1)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255


def test_every_camera_gets_its_own_distortion_as_opencv_computes_it_in_float():
    image = random_image()
    for draw, distorted in zip(DRAWS, on_device(image, DRAWS), strict=True):
        expected = float_reference(image, *draw)
        np.testing.assert_allclose(distorted, expected, rtol=0, atol=TOLERANCE['atol'])


def test_neutral_colours_change_nothing():
    image = random_image(1)
    (distorted,) = on_device(image, [NEUTRAL_COLOURS])
    np.testing.assert_allclose(distorted, image.astype(np.float32), rtol=0, atol=TOLERANCE['atol'])


def test_the_host_differs_by_its_uint8_rounding_only():
    # The host truncates the levels after the contrast (< 1) and keeps OpenCV's uint8 HSV,
    # whose round trip alone moves a level by a few (hue in 2-degree steps).
    image = random_image(2)
    round_trip = np.abs(distort_colours(image, 0.0, 1.0, 1.0, 0.0).astype(np.float32) - image)
    for draw, distorted in zip(DRAWS, on_device(image, DRAWS), strict=True):
        brightness, contrast, saturation, hue = draw
        host = distort_colours(image, brightness, contrast, saturation, hue).astype(np.float32)
        difference = np.abs(host - distorted)
        assert difference.mean() < 1.0, draw
        assert difference.max() <= round_trip.max() + 2.0, draw


@pytest.mark.gpu
def test_the_cuda_distortion_equals_the_cpu_distortion():
    image = random_image(3)
    images = torch.from_numpy(image).permute(2, 0, 1)[None, None].repeat(2, 4, 1, 1, 1)
    colours = torch.tensor(DRAWS[:4] + DRAWS[3:], dtype=torch.float32).reshape(2, 4, 4)
    expected = distort_colours_on_device(images, colours)
    distorted = distort_colours_on_device(images.cuda(), colours.cuda()).cpu()
    torch.testing.assert_close(distorted, expected, rtol=0, atol=TOLERANCE['atol'])
