"""HOTA aggregated as the AI City 2025 Track 1 protocol does it (formats.md §3.2).

1. Rows with ``0 <= frame < num_frames`` are kept; predictions on frames the scene's ground
   truth does not have are dropped.
2. Each (scene, class) with both ground truth and predictions is one HOTA sequence.
3. A scene's score is the unweighted mean over the classes that ran.
4. The final score is the mean over scenes weighted by their ground-truth rows; a scene
   with ground truth but no scored class (no predictions) counts 0 with its full weight.

Rows are the submission's 11 fields (``writers.aicity_submission``).
"""

import numpy as np

from ..writers.aicity_submission import BOX, CLASS, FRAME, OBJECT, SCENE, check_rows
from .hota import METRICS, hota_sequence, summarise
from .similarity import center_similarity, iou_3d

SIMILARITIES = ('iou3d', 'center')
PAIRS_PER_CHUNK = 1 << 21


def frame_similarities(gt_boxes, pred_boxes, kind: str = 'iou3d', zero_distance: float = 2.0):
    """Per-frame similarity matrices for lists of per-frame boxes [n_t, 7] and [m_t, 7],
    computed for all frames' pairs at once (in chunks) rather than frame by frame."""
    if kind not in SIMILARITIES:
        raise ValueError(f'similarity must be one of {SIMILARITIES}, got {kind!r}')
    if kind == 'center':
        return [
            center_similarity(g, p, zero_distance)
            for g, p in zip(gt_boxes, pred_boxes, strict=True)
        ]
    sizes = [(len(g), len(p)) for g, p in zip(gt_boxes, pred_boxes, strict=True)]
    gt_index, pred_index = [], []
    gt_offset = pred_offset = 0
    for n, m in sizes:
        rows, cols = np.meshgrid(np.arange(n), np.arange(m), indexing='ij')
        gt_index.append(rows.ravel() + gt_offset)
        pred_index.append(cols.ravel() + pred_offset)
        gt_offset += n
        pred_offset += m
    all_gt = np.concatenate(gt_boxes) if gt_offset else np.zeros((0, 7))
    all_pred = np.concatenate(pred_boxes) if pred_offset else np.zeros((0, 7))
    gt_index = np.concatenate(gt_index) if gt_index else np.zeros(0, int)
    pred_index = np.concatenate(pred_index) if pred_index else np.zeros(0, int)
    values = np.empty(len(gt_index))
    for start in range(0, len(gt_index), PAIRS_PER_CHUNK):
        chunk = slice(start, start + PAIRS_PER_CHUNK)
        values[chunk] = iou_3d(all_gt[gt_index[chunk]], all_pred[pred_index[chunk]], aligned=True)
    splits = np.cumsum([n * m for n, m in sizes])[:-1]
    return [v.reshape(n, m) for v, (n, m) in zip(np.split(values, splits), sizes, strict=True)]


def _sequence(gt: np.ndarray, pred: np.ndarray, frames: np.ndarray, kind: str, zero_distance):
    gt_frames = np.searchsorted(frames, gt[:, FRAME])
    pred_frames = np.searchsorted(frames, pred[:, FRAME])
    gt_split = [gt[gt_frames == f] for f in range(len(frames))]
    pred_split = [pred[pred_frames == f] for f in range(len(frames))]
    similarities = frame_similarities(
        [g[:, BOX] for g in gt_split], [p[:, BOX] for p in pred_split], kind, zero_distance
    )
    return hota_sequence(
        [g[:, OBJECT] for g in gt_split], [p[:, OBJECT] for p in pred_split], similarities
    )


def aicity_hota(
    gt_rows: np.ndarray,
    pred_rows: np.ndarray,
    similarity: str = 'iou3d',
    num_frames: int = 9000,
    zero_distance: float = 2.0,
) -> dict:
    """Score predictions against ground truth, both as [R, 11] submission rows.

    Returns:
        dict with ``per_scene_per_class`` {scene: {class_id: metrics}}, ``per_scene``
        {scene: metrics + weight}, ``final`` metrics; metrics are ``METRICS`` in percent.
    """
    gt_rows = check_rows(gt_rows, 'ground truth')
    pred_rows = check_rows(pred_rows, 'predictions')
    gt_rows = gt_rows[(gt_rows[:, FRAME] >= 0) & (gt_rows[:, FRAME] < num_frames)]
    pred_rows = pred_rows[(pred_rows[:, FRAME] >= 0) & (pred_rows[:, FRAME] < num_frames)]
    unknown = set(np.unique(pred_rows[:, SCENE])) - set(np.unique(gt_rows[:, SCENE]))
    if unknown:
        raise ValueError(
            f'predictions name scenes the ground truth lacks: {sorted(int(s) for s in unknown)}'
        )
    per_scene_per_class, per_scene = {}, {}
    for scene in np.unique(gt_rows[:, SCENE]):
        gt_scene = gt_rows[gt_rows[:, SCENE] == scene]
        frames = np.unique(gt_scene[:, FRAME])
        pred_scene = pred_rows[pred_rows[:, SCENE] == scene]
        pred_scene = pred_scene[np.isin(pred_scene[:, FRAME], frames)]
        classes = {}
        for cls in np.unique(gt_scene[:, CLASS]):
            gt = gt_scene[gt_scene[:, CLASS] == cls]
            pred = pred_scene[pred_scene[:, CLASS] == cls]
            if len(pred) == 0:
                continue  # skipped, not scored 0 (the protocol's rule)
            scores = summarise(_sequence(gt, pred, frames, similarity, zero_distance))
            classes[int(cls)] = {name: 100 * value for name, value in scores.items()}
        per_scene_per_class[int(scene)] = classes
        summary = {
            name: float(np.mean([c[name] for c in classes.values()])) if classes else 0.0
            for name in METRICS
        }
        summary['weight'] = int(len(gt_scene))
        per_scene[int(scene)] = summary
    weights = np.array([s['weight'] for s in per_scene.values()], dtype=np.float64)
    final = {
        name: float(np.sum([s[name] for s in per_scene.values()] * weights) / max(weights.sum(), 1))
        for name in METRICS
    }
    return {'per_scene_per_class': per_scene_per_class, 'per_scene': per_scene, 'final': final}
