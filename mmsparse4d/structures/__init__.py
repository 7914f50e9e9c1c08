"""Box codec (11-d anchor <-> 10-d box), index constants, camera maths, multi-camera
batches, track ids.

The numpy-only parts (camera maths, track ids) import eagerly; the torch parts (box codec,
batches) load on first use, so that the raw-scene readers, which use the camera maths, and
a scorer built on them (``tools/aicity_eval.py``) start without torch.
"""

import importlib

from .camera_geometry import camera_centre, projection_matrix, recentre_on_origin
from .track_ids import FIRST_TRACK_ID

_TORCH_MODULES = {
    '.box3d': (
        'ANCHOR_DIM',
        'BOX_DIM',
        'COS_YAW',
        'GT_BOX_DIM',
        'SIN_YAW',
        'VX',
        'VY',
        'VZ',
        'YAW',
        'H',
        'L',
        'W',
        'X',
        'Y',
        'Z',
        'decode_anchor',
        'encode_box',
    ),
    '.multiview_batch': (
        'CAMERA_PADDING',
        'NEUTRAL_COLOURS',
        'pad_cameras',
        'stack_depth_targets',
        'stack_multiview_inputs',
    ),
}
_LAZY = {name: module for module, names in _TORCH_MODULES.items() for name in names}

__all__ = [
    *_LAZY,
    'FIRST_TRACK_ID',
    'camera_centre',
    'projection_matrix',
    'recentre_on_origin',
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
