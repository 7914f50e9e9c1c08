"""Resize, crop, flip and rotate every camera's image consistently, keeping the projection
matrices and depth maps in agreement with the pixels."""

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


def _affine(scale: float, offset, flip_width: float | None, angle_deg: float, size) -> np.ndarray:
    """3x3 source-pixel -> output-pixel map (pixel centres at integers)."""
    matrix = np.diag([scale, scale, 1.0])
    matrix[:2, 2] = -np.asarray(offset, dtype=np.float64)
    if flip_width is not None:
        matrix = np.array([[-1.0, 0, flip_width - 1], [0, 1, 0], [0, 0, 1]]) @ matrix
    if angle_deg:
        centre = ((size[0] - 1) / 2, (size[1] - 1) / 2)
        rotation = np.eye(3)
        rotation[:2] = cv2.getRotationMatrix2D(centre, angle_deg, 1.0)
        matrix = rotation @ matrix
    return matrix


@TRANSFORMS.register_module()
class MultiViewImageAugmentation(BaseTransform):
    """One random (or, in test mode, fixed) image-plane transform for all cameras.

    The scale first makes each image cover ``final_size`` (W, H), then multiplies by a
    factor drawn from ``resize_range``; the crop is taken at the bottom (``crop='bottom'``,
    as upstream Sparse4D does: the floor matters more than the ceiling) or the centre, at a
    random horizontal offset in training; then an optional horizontal flip and 2D rotation.
    ``projection`` becomes A @ projection with A the 4x4 lift of the pixel transform, so a
    world point still lands on the pixel that shows it; ``depth`` maps move with nearest
    sampling; ``image_wh`` becomes ``final_size``; ``img_aug_matrix`` accumulates A.

    Args:
        final_size: output (W, H).
        resize_range: factor range over the covering scale; (1, 1) in test mode.
        crop: ``'bottom'`` or ``'center'``.
        flip_prob: probability of a horizontal flip.
        rotate_range: 2D rotation range in degrees.
        test_mode: fixed scale 1, centred horizontal crop, no flip or rotation.
        warp_images: ``'host'`` warps the images here (``cv2.warpAffine``, bilinear);
            ``'device'`` leaves them as loaded and adds ``image_warp`` [N, 2, 3] float32
            (output pixel -> input pixel) for ``Sparse4DDataPreprocessor`` to warp them on
            the device (``warp_images``): the warp is the data workers' largest cost, and a
            batched one costs a GPU-bound step little. The depth maps then stay as
            loaded too, and ``MultiScaleDepthTargets`` samples its cells through
            ``image_warp``; the projections and sizes are the same either way. The pixels
            differ by cv2's fixed-point rounding (at most a few levels at sharp edges). The
            cameras of a batch must then share one input size.
    """

    def __init__(
        self,
        final_size,
        resize_range=(1.0, 1.0),
        crop='bottom',
        flip_prob=0.0,
        rotate_range=(0.0, 0.0),
        test_mode=False,
        warp_images='host',
    ):
        if crop not in ('bottom', 'center'):
            raise ValueError(
                f"MultiViewImageAugmentation: crop must be 'bottom' or 'center', got {crop!r}"
            )
        if warp_images not in ('host', 'device'):
            raise ValueError(
                "MultiViewImageAugmentation: warp_images must be 'host' or 'device', "
                f'got {warp_images!r}'
            )
        self.warp_images = warp_images
        self.final_size = tuple(int(v) for v in final_size)
        self.resize_range = resize_range
        self.crop = crop
        self.flip_prob = flip_prob
        self.rotate_range = rotate_range
        self.test_mode = test_mode

    def _draw(self):
        if self.test_mode:
            return 1.0, 0.5, False, 0.0
        return (
            float(np.random.uniform(*self.resize_range)),
            float(np.random.uniform()),
            bool(np.random.uniform() < self.flip_prob),
            float(np.random.uniform(*self.rotate_range)),
        )

    def transform(self, results: dict) -> dict:
        factor, horizontal, flip, angle = self._draw()
        width_out, height_out = self.final_size
        images, depths, projections, matrices, warps = [], [], [], [], []
        for index, image in enumerate(results['img']):
            height, width = image.shape[:2]
            scale = max(width_out / width, height_out / height) * factor
            spare_x = width * scale - width_out
            spare_y = height * scale - height_out
            offset = (spare_x * horizontal, spare_y if self.crop == 'bottom' else spare_y / 2)
            affine = _affine(scale, offset, width_out if flip else None, angle, self.final_size)
            if self.warp_images == 'device':
                # Pixels as loaded: the images are warped on the device, the depth maps
                # sampled through the warp by MultiScaleDepthTargets.
                images.append(image)
                warps.append(np.linalg.inv(affine)[:2].astype(np.float32))
                if 'depth' in results:
                    depths.append(results['depth'][index])
            else:
                images.append(
                    cv2.warpAffine(image, affine[:2], self.final_size, flags=cv2.INTER_LINEAR)
                )
                if 'depth' in results:
                    depths.append(
                        cv2.warpAffine(
                            results['depth'][index],
                            affine[:2],
                            self.final_size,
                            flags=cv2.INTER_NEAREST,
                        )
                    )
            # Acts on homogeneous pixels (u z, v z, z, 1): the shift multiplies z.
            lift = np.eye(4)
            lift[:2, :3] = affine[:2]
            projections.append(lift @ results['projection'][index])
            matrices.append(lift @ results['img_aug_matrix'][index])
        results['img'] = images
        if warps:
            results['image_warp'] = np.stack(warps)
        if depths:
            results['depth'] = depths
        results['projection'] = np.stack(projections)
        results['img_aug_matrix'] = np.stack(matrices)
        results['image_wh'] = np.tile(np.array(self.final_size, dtype=np.float32), (len(images), 1))
        return results
