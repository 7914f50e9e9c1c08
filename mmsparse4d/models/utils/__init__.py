"""Helpers shared by the models."""

from .colour_distortion import distort_colours_on_device
from .feature_maps import pack_feature_maps
from .float32_region import float32_under_autocast
from .global_mean import global_mean_denominator
from .host_transfer import to_device, to_host_at_once
from .image_warp import warp_images
from .ordering import stable_topk
from .padding import pad_sequence

__all__ = [
    'distort_colours_on_device',
    'float32_under_autocast',
    'global_mean_denominator',
    'pack_feature_maps',
    'pad_sequence',
    'stable_topk',
    'to_device',
    'to_host_at_once',
    'warp_images',
]
