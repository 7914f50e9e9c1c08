"""Drop random cameras from a training sample (robustness to failed or missing cameras)."""

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomCameraDrop(BaseTransform):
    """With probability ``prob``, keep a random subset of between ``min_cameras`` and all
    cameras (in their original order). Run before ``LoadMultiViewImages`` so dropped
    frames are never read; ``gt_visibility`` loses the dropped cameras' columns."""

    def __init__(self, min_cameras: int = 1, prob: float = 0.5):
        if min_cameras < 1:
            raise ValueError(f'RandomCameraDrop: min_cameras must be >= 1, got {min_cameras}')
        self.min_cameras = min_cameras
        self.prob = prob

    def transform(self, results: dict) -> dict:
        names = list(results['cams'])
        if len(names) <= self.min_cameras or np.random.rand() >= self.prob:
            return results
        count = np.random.randint(self.min_cameras, len(names) + 1)
        keep = np.sort(np.random.choice(len(names), count, replace=False))
        results['cams'] = {names[i]: results['cams'][names[i]] for i in keep}
        if 'gt_visibility' in results:
            results['gt_visibility'] = results['gt_visibility'][:, keep]
        return results
