"""Target assignment (Hungarian matching, denoising) and box decoders."""

from .denoising_attention_mask import denoising_attention_mask
from .motion_heading import MotionHeading
from .sparse_box3d_decoder import SparseBox3DDecoder
from .sparse_box3d_target import DN_NEGATIVE, PADDING, SparseBox3DTarget
from .track_stitcher import TrackStitcher

__all__ = [
    'DN_NEGATIVE',
    'PADDING',
    'MotionHeading',
    'SparseBox3DDecoder',
    'SparseBox3DTarget',
    'TrackStitcher',
    'denoising_attention_mask',
]
