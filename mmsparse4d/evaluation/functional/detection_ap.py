"""nuScenes-style detection AP with centre-distance thresholds (formats.md §4).

Greedy matching in score order against the not-yet-taken ground truth of the same sample
and class, with the xy centre distance strictly below the threshold; precision resampled on
101 recall points (linear, 0 beyond the last recall); AP over recall > 0.1 with precision
above 0.1 counted. mAP is the mean over classes of the mean over thresholds. The true-
positive errors (translation, scale, orientation) are measured at 2 m, as the devkit does.
"""

from collections.abc import Mapping, Sequence

import numpy as np

DIST_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
TP_THRESHOLD = 2.0
MIN_RECALL = 0.1
MIN_PRECISION = 0.1
RECALLS = np.linspace(0, 1, 101)
TP_METRICS = ('trans_err', 'scale_err', 'orient_err')


def _scale_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boxes' sizes aligned at the same centre and heading."""
    intersection = np.prod(np.minimum(a, b))
    return float(intersection / (np.prod(a) + np.prod(b) - intersection))


def _yaw_difference(a: float, b: float) -> float:
    diff = (a - b) % (2 * np.pi)
    return float(min(diff, 2 * np.pi - diff))


def _cummean(values: np.ndarray) -> np.ndarray:
    return np.cumsum(values) / np.arange(1, len(values) + 1)


def accumulate(gt: Mapping, pred: Mapping, label: int, threshold: float) -> dict | None:
    """Precision and TP errors on the recall grid for one class and threshold.

    Args:
        gt: sample token -> (boxes [n, 7], labels [n]).
        pred: sample token -> (boxes [m, 7], scores [m], labels [m]).

    Returns:
        dict of ``precision``, ``confidence`` and ``TP_METRICS`` on the 101 recall points,
        or None when there is no ground truth or no true positive (AP 0).
    """
    npos = sum(int(np.sum(labels == label)) for _, labels in gt.values())
    if npos == 0:
        return None
    candidates = []
    for token, (boxes, scores, labels) in pred.items():
        for index in np.flatnonzero(labels == label):
            candidates.append((float(scores[index]), token, boxes[index]))
    # The devkit's order: by score, ties broken by position, highest first.
    order = [i for _, i in sorted((c[0], i) for i, c in enumerate(candidates))][::-1]
    taken = set()
    tp, fp, confidence = [], [], []
    errors = {name: [] for name in TP_METRICS}
    match_confidence = []
    for i in order:
        score, token, box = candidates[i]
        gt_boxes, gt_labels = gt.get(token, (np.zeros((0, 7)), np.zeros(0, int)))
        best, best_distance = None, np.inf
        for g in np.flatnonzero(gt_labels == label):
            if (token, g) in taken:
                continue
            distance = float(np.linalg.norm(gt_boxes[g, :2] - box[:2]))
            if distance < best_distance:
                best, best_distance = g, distance
        if best is not None and best_distance < threshold:
            taken.add((token, best))
            tp.append(1)
            fp.append(0)
            match_confidence.append(score)
            errors['trans_err'].append(best_distance)
            errors['scale_err'].append(1 - _scale_iou(gt_boxes[best, 3:6], box[3:6]))
            errors['orient_err'].append(_yaw_difference(gt_boxes[best, 6], box[6]))
        else:
            tp.append(0)
            fp.append(1)
        confidence.append(score)
    if not match_confidence:
        return None
    tp, fp, confidence = (
        np.cumsum(tp).astype(float),
        np.cumsum(fp).astype(float),
        np.array(confidence),
    )
    precision = tp / (fp + tp)
    recall = tp / float(npos)
    result = {
        'precision': np.interp(RECALLS, recall, precision, right=0),
        'confidence': np.interp(RECALLS, recall, confidence, right=0),
    }
    match_confidence = np.array(match_confidence)
    for name in TP_METRICS:
        curve = _cummean(np.array(errors[name]))
        result[name] = np.interp(result['confidence'][::-1], match_confidence[::-1], curve[::-1])[
            ::-1
        ]
    return result


def calc_ap(
    curves: dict | None, min_recall: float = MIN_RECALL, min_precision: float = MIN_PRECISION
) -> float:
    if curves is None:
        return 0.0
    precision = np.copy(curves['precision'])[round(100 * min_recall) + 1 :]
    precision = np.clip(precision - min_precision, 0, None)
    return float(np.mean(precision)) / (1.0 - min_precision)


def calc_tp(curves: dict | None, name: str, min_recall: float = MIN_RECALL) -> float:
    """Mean TP error over the recall bins from min_recall to the highest reached; 1 if none."""
    if curves is None:
        return 1.0
    non_zero = np.nonzero(curves['confidence'])[0]
    last = non_zero[-1] if len(non_zero) else 0
    first = round(100 * min_recall) + 1
    if last < first:
        return 1.0
    return float(np.mean(curves[name][first : last + 1]))


def detection_ap(
    gt: Mapping,
    pred: Mapping,
    class_names: Sequence[str],
    thresholds: Sequence[float] = DIST_THRESHOLDS,
) -> dict:
    """AP per class and threshold, mAP, and TP errors at 2 m.

    Returns:
        dict: ``per_class`` {name: {'AP@0.5': ..., 'AP': mean over thresholds, trans_err,
        scale_err, orient_err}}, ``mAP`` and the class-mean TP errors.
    """
    per_class = {}
    for label, name in enumerate(class_names):
        entry = {}
        for threshold in thresholds:
            entry[f'AP@{threshold:g}'] = calc_ap(accumulate(gt, pred, label, threshold))
        entry['AP'] = float(np.mean([entry[f'AP@{t:g}'] for t in thresholds]))
        tp_curves = accumulate(gt, pred, label, TP_THRESHOLD)
        for metric in TP_METRICS:
            entry[metric] = calc_tp(tp_curves, metric)
        per_class[name] = entry
    summary = {'per_class': per_class, 'mAP': float(np.mean([c['AP'] for c in per_class.values()]))}
    for metric in TP_METRICS:
        summary[metric] = float(np.mean([c[metric] for c in per_class.values()]))
    return summary
