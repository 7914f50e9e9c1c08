"""Where 3D-IoU HOTA is lost: per-class box errors of predictions matched to ground truth.

HOTA's similarity is the 3D IoU, so a tracker that finds every object can still score low
when its boxes are off by a few centimetres or degrees. This breaks the loss down per class:

- **Matching.** Per (scene, class, frame), ground truth and predictions are paired by the
  Hungarian assignment on bird's-eye-view centre distance, pairs farther than
  ``max_distance`` metres apart being left unmatched. Unmatched ground truth is *missed*
  (``confused`` when an unmatched prediction of another class lies within ``max_distance``);
  unmatched predictions are *false positives*.
- **Errors of matched pairs.** BEV centre distance, signed height-of-centre (z) error,
  signed size errors (w, l, h: prediction minus ground truth, metres) and the yaw error
  modulo pi (degrees in [0, 90]; a box is the same box at yaw + pi, and the IoU agrees).
- **Oracle IoUs.** The mean IoU of the matched pairs when one part of each prediction is
  replaced by the ground truth's: the BEV centre, z, size or yaw. The part whose oracle gains
  most is where the IoU is lost. Each oracle is one counterfactual: they do not add up, and
  one can fall below the IoU (a too-wide box that covered a centre error, made right).
- **Substitution.** ``substitute_ground_truth`` writes those counterfactuals back into the
  submission (the matched predictions' parts taken from their ground truth), so that HOTA
  itself, association and all, can be scored as if a part were right.

Rows are the submission's 11 fields (``writers.aicity_submission``).
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..writers.aicity_submission import BOX, CLASS, FRAME, SCENE, check_rows
from .similarity import iou_3d

# Box columns (x, y, z, w, l, h, yaw) each oracle takes from the ground truth.
ORACLE_PARTS = {'centre_xy': [0, 1], 'z': [2], 'size': [3, 4, 5], 'yaw': [6]}


def yaw_error_modulo_pi(pred_yaw: np.ndarray, gt_yaw: np.ndarray) -> np.ndarray:
    """|pred - gt| wrapped modulo pi into [0, pi/2] radians."""
    difference = np.mod(np.asarray(pred_yaw) - np.asarray(gt_yaw) + np.pi / 2, np.pi) - np.pi / 2
    return np.abs(difference)


def _shared_groups(gt_keys: np.ndarray, pred_keys: np.ndarray):
    """Yield (ground-truth row indices, prediction row indices) for each key row (e.g.
    scene, class, frame) that both [G, k] and [P, k] hold."""
    keys, index = np.unique(np.concatenate([gt_keys, pred_keys]), axis=0, return_inverse=True)
    index = index.ravel()
    gt_key, pred_key = index[: len(gt_keys)], index[len(gt_keys) :]
    gt_order, pred_order = np.argsort(gt_key, kind='stable'), np.argsort(pred_key, kind='stable')
    gt_bounds = np.searchsorted(gt_key[gt_order], np.arange(len(keys) + 1))
    pred_bounds = np.searchsorted(pred_key[pred_order], np.arange(len(keys) + 1))
    for key in range(len(keys)):
        gt_here = gt_order[gt_bounds[key] : gt_bounds[key + 1]]
        pred_here = pred_order[pred_bounds[key] : pred_bounds[key + 1]]
        if len(gt_here) and len(pred_here):
            yield gt_here, pred_here


BEV_CENTRE = slice(BOX.start, BOX.start + 2)  # the rows' box x, y


def _bev_distance(gt_rows, gt_here, pred_rows, pred_here) -> np.ndarray:
    return np.linalg.norm(
        gt_rows[gt_here, None, BEV_CENTRE] - pred_rows[None, pred_here, BEV_CENTRE], axis=-1
    )


def match_by_centre(
    gt_rows: np.ndarray, pred_rows: np.ndarray, max_distance: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair rows of the same scene, class and frame by BEV centre distance.

    Returns:
        tuple: matched ground-truth row indices [M], matched prediction row indices [M],
        a [G] bool mask of matched ground-truth rows and a [P] one of matched predictions.
    """
    columns = [SCENE, CLASS, FRAME]
    matched_gt, matched_pred = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for gt_here, pred_here in _shared_groups(gt_rows[:, columns], pred_rows[:, columns]):
        distance = _bev_distance(gt_rows, gt_here, pred_rows, pred_here)
        rows, cols = linear_sum_assignment(distance)
        close = distance[rows, cols] <= max_distance
        matched_gt.append(gt_here[rows[close]])
        matched_pred.append(pred_here[cols[close]])
    matched_gt, matched_pred = np.concatenate(matched_gt), np.concatenate(matched_pred)
    gt_mask = np.zeros(len(gt_rows), bool)
    pred_mask = np.zeros(len(pred_rows), bool)
    gt_mask[matched_gt] = True
    pred_mask[matched_pred] = True
    return matched_gt, matched_pred, gt_mask, pred_mask


def _confused(gt_rows, pred_rows, missed, unmatched_pred, max_distance) -> np.ndarray:
    """[G] bool: missed ground-truth rows with an unmatched prediction of another class
    within ``max_distance`` (BEV) in the same scene and frame."""
    confused = np.zeros(len(gt_rows), bool)
    gt_index, pred_index = np.flatnonzero(missed), np.flatnonzero(unmatched_pred)
    columns = [SCENE, FRAME]
    for gt_at, pred_at in _shared_groups(
        gt_rows[gt_index][:, columns], pred_rows[pred_index][:, columns]
    ):
        gt_here, pred_here = gt_index[gt_at], pred_index[pred_at]
        near = _bev_distance(gt_rows, gt_here, pred_rows, pred_here) <= max_distance
        other_class = gt_rows[gt_here, None, CLASS] != pred_rows[None, pred_here, CLASS]
        confused[gt_here] = (near & other_class).any(axis=1)
    return confused


def _pair_errors(gt_boxes: np.ndarray, pred_boxes: np.ndarray) -> dict[str, float]:
    """Summary errors of matched boxes [M, 7] (see the module docstring)."""
    centre = np.linalg.norm(pred_boxes[:, :2] - gt_boxes[:, :2], axis=-1)
    z = pred_boxes[:, 2] - gt_boxes[:, 2]
    size = pred_boxes[:, 3:6] - gt_boxes[:, 3:6]
    yaw = np.degrees(yaw_error_modulo_pi(pred_boxes[:, 6], gt_boxes[:, 6]))
    errors = {
        'iou': float(iou_3d(gt_boxes, pred_boxes, aligned=True).mean()),
        'centre_xy_median': float(np.median(centre)),
        'centre_xy_p90': float(np.percentile(centre, 90)),
        'z_median': float(np.median(z)),
        'yaw_deg_median': float(np.median(yaw)),
        'yaw_deg_p90': float(np.percentile(yaw, 90)),
    }
    for axis, name in enumerate('wlh'):
        errors[f'{name}_median'] = float(np.median(size[:, axis]))
    for part, columns in ORACLE_PARTS.items():
        corrected = pred_boxes.copy()
        corrected[:, columns] = gt_boxes[:, columns]
        errors[f'oracle_{part}'] = float(iou_3d(gt_boxes, corrected, aligned=True).mean())
    return errors


def box_error_breakdown(
    gt_rows: np.ndarray, pred_rows: np.ndarray, max_distance: float = 2.0
) -> dict[int, dict[str, float]]:
    """Per class id: ``gt``, ``matched``, ``missed``, ``confused`` and ``false_positives``
    (row counts), and for the matched pairs the errors and oracle IoUs of the module
    docstring (absent for a class without matches). Both inputs are [R, 11] submission rows.
    """
    if max_distance <= 0:
        raise ValueError(f'max_distance must be positive, got {max_distance}')
    gt_rows = check_rows(gt_rows, 'ground truth', ground_truth=True)
    pred_rows = check_rows(pred_rows, 'predictions')
    matched_gt, matched_pred, gt_mask, pred_mask = match_by_centre(gt_rows, pred_rows, max_distance)
    confused = _confused(gt_rows, pred_rows, ~gt_mask, ~pred_mask, max_distance)
    breakdown = {}
    for class_id in np.unique(np.concatenate([gt_rows[:, CLASS], pred_rows[:, CLASS]])):
        in_class_gt = gt_rows[:, CLASS] == class_id
        in_class_pred = pred_rows[:, CLASS] == class_id
        missed = in_class_gt & ~gt_mask
        summary = {
            'gt': int(in_class_gt.sum()),
            'matched': int((in_class_gt & gt_mask).sum()),
            'missed': int(missed.sum()),
            'confused': int((confused & in_class_gt).sum()),
            'false_positives': int((in_class_pred & ~pred_mask).sum()),
        }
        pairs = gt_rows[matched_gt, CLASS] == class_id
        if pairs.any():
            summary.update(
                _pair_errors(gt_rows[matched_gt[pairs], BOX], pred_rows[matched_pred[pairs], BOX])
            )
        breakdown[int(class_id)] = summary
    return breakdown


def substitute_ground_truth(
    gt_rows: np.ndarray, pred_rows: np.ndarray, parts, max_distance: float = 2.0
) -> np.ndarray:
    """A copy of the prediction rows [P, 11] in which every prediction matched to ground
    truth (``match_by_centre``) takes the named ``parts`` (keys of ``ORACLE_PARTS``) of its
    box from its ground-truth row; unmatched rows, ids and classes are kept. Scored again,
    it tells what the submission would be worth if those parts were right."""
    unknown = sorted(set(parts) - set(ORACLE_PARTS))
    if unknown or not parts:
        raise ValueError(f'parts must be some of {sorted(ORACLE_PARTS)}, got {list(parts)}')
    if max_distance <= 0:
        raise ValueError(f'max_distance must be positive, got {max_distance}')
    gt_rows = check_rows(gt_rows, 'ground truth', ground_truth=True)
    pred_rows = check_rows(pred_rows, 'predictions')
    matched_gt, matched_pred, _, _ = match_by_centre(gt_rows, pred_rows, max_distance)
    columns = [BOX.start + column for part in parts for column in ORACLE_PARTS[part]]
    out = pred_rows.copy()
    out[np.ix_(matched_pred, columns)] = gt_rows[np.ix_(matched_gt, columns)]
    return out
