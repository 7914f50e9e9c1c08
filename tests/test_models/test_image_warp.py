"""warp_images: bilinear affine warps on the device, against an exact float64 reference and
against cv2.warpAffine (the data workers' warp)."""

import cv2
import numpy as np
import pytest
import torch

from mmsparse4d.datasets.transforms.multi_view_image_augmentation import _affine
from mmsparse4d.models.utils import warp_images


def bilinear_reference(image: np.ndarray, inverse: np.ndarray, size) -> np.ndarray:
    """float64 bilinear samples of image [H, W, C] at inverse @ (x, y, 1) for every output
    pixel; corners outside the image count 0 (a constant border)."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float64)
    sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    out = np.zeros((size[1], size[0], image.shape[2]))
    padded = np.zeros((height + 2, width + 2, image.shape[2]))
    padded[1:-1, 1:-1] = image
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy = np.clip(y0 + dy + 1, 0, height + 1)
            xx = np.clip(x0 + dx + 1, 0, width + 1)
            out += (wy * wx)[..., None] * padded[yy, xx]
    return out


def augmentation(seed: int, source=(96, 54), size=(80, 48)) -> np.ndarray:
    """A training draw of MultiViewImageAugmentation's map: cover, random scale and crop,
    flip and rotation."""
    rng = np.random.default_rng(seed)
    scale = max(size[0] / source[0], size[1] / source[1]) * rng.uniform(1.0, 1.3)
    offset = ((source[0] * scale - size[0]) * rng.uniform(), source[1] * scale - size[1])
    flip = size[0] if rng.uniform() < 0.5 else None
    return _affine(scale, offset, flip, rng.uniform(-5.4, 5.4), size)


def test_warp_equals_the_exact_bilinear_samples():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 54, 96, 3), dtype=np.uint8)
    inverses = np.stack(
        [[np.linalg.inv(augmentation(3 * b + n)) for n in range(3)] for b in range(2)]
    )
    warped = warp_images(
        torch.from_numpy(images).permute(0, 1, 4, 2, 3),
        torch.from_numpy(inverses[:, :, :2]).float(),
        (80, 48),
    )
    assert warped.shape == (2, 3, 3, 48, 80) and warped.dtype == torch.float32
    for b in range(2):
        for n in range(3):
            expected = bilinear_reference(images[b, n], inverses[b, n], (80, 48))
            # float32 coordinates: 2^-24 relative at pixel 100 is 6e-6 px, x 255 levels.
            np.testing.assert_allclose(
                warped[b, n].permute(1, 2, 0).numpy(), expected, rtol=0, atol=0.02
            )


def test_warp_agrees_with_cv2_up_to_its_fixed_point():
    # A smooth image: cv2 rounds coordinates to 1/32 pixel, off by at most
    # |gradient| / 32 levels here (gradient <= 3 levels per pixel).
    ys, xs = np.mgrid[0:54, 0:96]
    image = np.stack([xs * 2.5, ys * 3.0, 120 + 60 * np.sin(xs / 9.0)], axis=-1).astype(np.uint8)
    for seed in range(4):
        affine = augmentation(seed)
        expected = cv2.warpAffine(image, affine[:2], (80, 48), flags=cv2.INTER_LINEAR)
        inverse = torch.from_numpy(np.linalg.inv(affine)[:2]).float()
        warped = warp_images(
            torch.from_numpy(image).permute(2, 0, 1)[None, None], inverse[None, None], (80, 48)
        )[0, 0].permute(1, 2, 0)
        interior = np.s_[2:-2, 2:-2]  # cv2 and the exact samples differ most at the border
        difference = np.abs(warped.numpy()[interior] - expected[interior])
        assert difference.max() <= 1.5, seed


def test_an_all_zero_warp_samples_black_for_a_padded_camera():
    images = torch.zeros(1, 2, 3, 10, 12, dtype=torch.uint8)
    images[0, 0] = 200
    warps = torch.zeros(1, 2, 2, 3)
    warps[0, 0, 0, 0] = warps[0, 0, 1, 1] = 1.0  # identity for the real camera
    warped = warp_images(images, warps, (12, 10))
    torch.testing.assert_close(warped[0, 0], torch.full((3, 10, 12), 200.0))
    assert warped[0, 1].eq(0).all()


@pytest.mark.gpu
def test_the_cuda_warp_equals_the_cpu_warp():
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (2, 4, 3, 54, 96), dtype=np.uint8))
    inverses = [[np.linalg.inv(augmentation(4 * b + n))[:2] for n in range(4)] for b in range(2)]
    warps = torch.from_numpy(np.array(inverses)).float()
    expected = warp_images(images, warps, (80, 48))
    warped = warp_images(images.cuda(), warps.cuda(), (80, 48)).cpu()
    torch.testing.assert_close(warped, expected, rtol=0, atol=0.02)
