"""Metric functions: HOTA, AI City aggregation, nuScenes-style detection AP, similarities."""

from .aicity_hota import aicity_hota, classes_left_out, every_class_hota, frame_similarities
from .box_errors import (
    box_error_breakdown,
    match_by_centre,
    substitute_ground_truth,
    yaw_error_modulo_pi,
)
from .detection_ap import accumulate, calc_ap, calc_tp, detection_ap
from .hota import ALPHAS, METRICS, hota_sequence, summarise
from .similarity import center_similarity, iou_3d
from .track_smoothing import smooth_tracks

__all__ = [
    'ALPHAS',
    'METRICS',
    'accumulate',
    'aicity_hota',
    'box_error_breakdown',
    'calc_ap',
    'calc_tp',
    'center_similarity',
    'classes_left_out',
    'detection_ap',
    'every_class_hota',
    'frame_similarities',
    'hota_sequence',
    'iou_3d',
    'match_by_centre',
    'smooth_tracks',
    'substitute_ground_truth',
    'summarise',
    'yaw_error_modulo_pi',
]
