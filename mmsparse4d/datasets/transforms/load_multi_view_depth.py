"""Load every camera's depth map of a sample."""

from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from .frame_cache import FrameCache


@TRANSFORMS.register_module()
class LoadMultiViewDepth(BaseTransform):
    """Adds ``depth``: a list over ``cam_names`` of float32 [H, W] metres along the optical
    axis, 0 where there is no return. Run after ``LoadMultiViewImages``."""

    def __init__(self):
        self.frames = FrameCache()

    def transform(self, results: dict) -> dict:
        depths = []
        for name in results['cam_names']:
            cam = results['cams'][name]
            if cam['depth_path'] is None:
                raise FileNotFoundError(
                    f'sample {results.get("token")}: camera {name!r} has no depth_map_path'
                )
            depths.append(self.frames.depth(cam['depth_path'], cam['depth_key']))
        results['depth'] = depths
        return results
