"""Metric functions: HOTA, AI City aggregation, nuScenes-style detection AP, similarities."""

from .aicity_hota import aicity_hota, frame_similarities
from .detection_ap import accumulate, calc_ap, calc_tp, detection_ap
from .hota import ALPHAS, METRICS, hota_sequence, summarise
from .similarity import center_similarity, iou_3d

__all__ = [
    'ALPHAS',
    'METRICS',
    'accumulate',
    'aicity_hota',
    'calc_ap',
    'calc_tp',
    'center_similarity',
    'detection_ap',
    'frame_similarities',
    'hota_sequence',
    'iou_3d',
    'summarise',
]
