"""Data pipeline transforms."""

from .global_rotation_3d import GlobalRotation3D
from .load_multi_view_depth import LoadMultiViewDepth
from .load_multi_view_images import LoadMultiViewImages
from .multi_scale_depth_targets import MultiScaleDepthTargets
from .multi_view_image_augmentation import MultiViewImageAugmentation
from .normalize_multi_view_images import NormalizeMultiViewImages
from .pack_sparse4d_inputs import PackSparse4DInputs
from .photometric_distortion import MultiViewPhotometricDistortion
from .random_camera_drop import RandomCameraDrop

__all__ = [
    'GlobalRotation3D',
    'LoadMultiViewDepth',
    'LoadMultiViewImages',
    'MultiScaleDepthTargets',
    'MultiViewImageAugmentation',
    'MultiViewPhotometricDistortion',
    'NormalizeMultiViewImages',
    'PackSparse4DInputs',
    'RandomCameraDrop',
]
