"""Load every camera's RGB frame of a sample, with its projection matrix."""

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from .frame_cache import FrameCache


@TRANSFORMS.register_module()
class LoadMultiViewImages(BaseTransform):
    """Adds ``img`` (list of RGB uint8 [H, W, 3]), ``cam_names``, ``projection`` [N, 4, 4]
    (world to homogeneous pixel), ``intrinsic`` [N, 3, 3], ``world_to_camera`` [N, 4, 4]
    and ``image_wh`` [N, 2] from the sample's ``cams`` (h5, mp4 or image files).

    Args:
        max_cameras: keep at most this many cameras (the first ones, in dataset order);
            None keeps all.
    """

    def __init__(self, max_cameras: int | None = None):
        self.max_cameras = max_cameras
        self.frames = FrameCache()

    def transform(self, results: dict) -> dict:
        names = list(results['cams'])[: self.max_cameras]
        cams = [results['cams'][name] for name in names]
        images = [self.frames.rgb(cam['img_path'], cam['img_key']) for cam in cams]
        for name, cam, image in zip(names, cams, images, strict=True):
            if tuple(image.shape[1::-1]) != tuple(cam['image_wh']):
                raise ValueError(
                    f'{cam["img_path"]}: camera {name!r} frame is {image.shape[1]}x{image.shape[0]}'
                    f' but its calibration says {cam["image_wh"][0]}x{cam["image_wh"][1]}'
                )
        results['cam_names'] = names
        results['img'] = images
        results['projection'] = np.stack([cam['projection'] for cam in cams])
        results['intrinsic'] = np.stack([cam['intrinsic'] for cam in cams])
        results['world_to_camera'] = np.stack([cam['world_to_camera'] for cam in cams])
        results['image_wh'] = np.array([image.shape[1::-1] for image in images], dtype=np.float32)
        results['img_aug_matrix'] = np.tile(np.eye(4), (len(images), 1, 1))
        if 'gt_visibility' in results and len(names) < len(results['cams']):
            results['gt_visibility'] = results['gt_visibility'][:, : len(names)]
        return results
