"""HOTA (Luiten et al., IJCV 2021) for one sequence, written to give TrackEval's numbers.

A sequence is a list of frames; each frame has ground-truth and predicted track ids and a
similarity matrix [n_gt, n_pred] (3D IoU or centre similarity, see ``similarity.py``).
Scores are arrays over the 19 localisation thresholds alpha = 0.05 ... 0.95; the reported
value of each metric is their mean.
"""

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHAS = np.arange(0.05, 0.99, 0.05)
EPS = np.finfo('float').eps
METRICS = ('HOTA', 'DetA', 'AssA', 'DetRe', 'DetPr', 'AssRe', 'AssPr', 'LocA', 'OWTA')
COUNTS = ('HOTA_TP', 'HOTA_FN', 'HOTA_FP')


def _contiguous(ids_per_frame: Sequence[np.ndarray], what: str) -> tuple[list[np.ndarray], int]:
    """Map arbitrary integer ids to 0..K-1; an id twice in one frame is an error."""
    ids_per_frame = [np.asarray(ids, dtype=np.int64).reshape(-1) for ids in ids_per_frame]
    for frame, ids in enumerate(ids_per_frame):
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f'{what}: frame {frame} has the same track id more than once')
    everything = np.concatenate(ids_per_frame) if ids_per_frame else np.zeros(0, np.int64)
    unique, inverse = np.unique(everything, return_inverse=True)
    splits = np.cumsum([len(ids) for ids in ids_per_frame])[:-1]
    return list(np.split(inverse, splits)), len(unique)


def hota_sequence(
    gt_ids: Sequence[np.ndarray],
    pred_ids: Sequence[np.ndarray],
    similarities: Sequence[np.ndarray],
) -> dict[str, np.ndarray]:
    """HOTA and its sub-metrics for one sequence.

    Args:
        gt_ids: per frame, the ground-truth track ids [n_t].
        pred_ids: per frame, the predicted track ids [m_t].
        similarities: per frame, [n_t, m_t] in [0, 1].

    Returns:
        dict: each metric of ``METRICS`` and ``COUNTS`` as an array over ``ALPHAS``.
    """
    if not len(gt_ids) == len(pred_ids) == len(similarities):
        raise ValueError(
            'hota_sequence: gt_ids, pred_ids and similarities need one entry per frame'
        )
    gt_ids, num_gt_ids = _contiguous(gt_ids, 'ground truth')
    pred_ids, num_pred_ids = _contiguous(pred_ids, 'predictions')
    num_gt = sum(len(ids) for ids in gt_ids)
    num_pred = sum(len(ids) for ids in pred_ids)
    res = {name: np.zeros(len(ALPHAS)) for name in (*METRICS, *COUNTS)}
    if num_pred == 0 or num_gt == 0:
        res['HOTA_FN'][:] = num_gt
        res['HOTA_FP'][:] = num_pred
        res['LocA'][:] = 1.0
        return _final(res)

    potential = np.zeros((num_gt_ids, num_pred_ids))
    gt_count = np.zeros((num_gt_ids, 1))
    pred_count = np.zeros((1, num_pred_ids))
    for g, p, similarity in zip(gt_ids, pred_ids, similarities, strict=True):
        similarity = np.asarray(similarity, dtype=np.float64).reshape(len(g), len(p))
        denominator = similarity.sum(0)[None, :] + similarity.sum(1)[:, None] - similarity
        normalised = np.zeros_like(similarity)
        mask = denominator > EPS
        normalised[mask] = similarity[mask] / denominator[mask]
        potential[g[:, None], p[None, :]] += normalised
        gt_count[g] += 1
        pred_count[0, p] += 1
    global_alignment = potential / (gt_count + pred_count - potential)

    matches = np.zeros((len(ALPHAS), num_gt_ids, num_pred_ids))
    for g, p, similarity in zip(gt_ids, pred_ids, similarities, strict=True):
        if len(g) == 0:
            res['HOTA_FP'] += len(p)
            continue
        if len(p) == 0:
            res['HOTA_FN'] += len(g)
            continue
        similarity = np.asarray(similarity, dtype=np.float64).reshape(len(g), len(p))
        score = global_alignment[g[:, None], p[None, :]] * similarity
        rows, cols = linear_sum_assignment(-score)
        matched_similarity = similarity[rows, cols]
        for a, alpha in enumerate(ALPHAS):
            keep = matched_similarity >= alpha - EPS
            count = int(keep.sum())
            res['HOTA_TP'][a] += count
            res['HOTA_FN'][a] += len(g) - count
            res['HOTA_FP'][a] += len(p) - count
            if count:
                res['LocA'][a] += matched_similarity[keep].sum()
                matches[a, g[rows[keep]], p[cols[keep]]] += 1

    for a in range(len(ALPHAS)):
        count = matches[a]
        tp = max(1, res['HOTA_TP'][a])
        res['AssA'][a] = np.sum(count * (count / np.maximum(1, gt_count + pred_count - count))) / tp
        res['AssRe'][a] = np.sum(count * (count / np.maximum(1, gt_count))) / tp
        res['AssPr'][a] = np.sum(count * (count / np.maximum(1, pred_count))) / tp
    res['LocA'] = np.maximum(1e-10, res['LocA']) / np.maximum(1e-10, res['HOTA_TP'])
    return _final(res)


def _final(res: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    tp, fn, fp = res['HOTA_TP'], res['HOTA_FN'], res['HOTA_FP']
    res['DetRe'] = tp / np.maximum(1, tp + fn)
    res['DetPr'] = tp / np.maximum(1, tp + fp)
    res['DetA'] = tp / np.maximum(1, tp + fn + fp)
    res['HOTA'] = np.sqrt(res['DetA'] * res['AssA'])
    res['OWTA'] = np.sqrt(res['DetRe'] * res['AssA'])
    return res


def summarise(res: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean over the alphas of every metric (the reported numbers, 0-1 scale)."""
    return {name: float(np.mean(res[name])) for name in METRICS}
