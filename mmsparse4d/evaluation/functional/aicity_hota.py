"""HOTA aggregated as the AI City 2025 Track 1 protocol does it (formats.md §3.2).

1. Rows with ``0 <= frame < num_frames`` are kept; predictions on frames the scene's ground
   truth does not have are dropped.
2. Each (scene, class) with both ground truth and predictions is one HOTA sequence.
3. A scene's score is the unweighted mean over the classes that ran.
4. The final score is the mean over scenes weighted by their ground-truth rows; a scene
   with ground truth but no scored class (no predictions) counts 0 with its full weight.

Step 3 rewards leaving a class out: a class the tracker finds badly scores better not
reported at all. ``every_class_hota`` is the same mean with such a class scored 0, the
figure to make choices on (dropping whole tracks can raise the protocol's HOTA while
lowering it).

Rows are the submission's 11 fields (``writers.aicity_submission``). Track ids are only
compared for equality (HOTA renumbers them per sequence), so no id, 0 included, is special;
ground-truth ids are used as they are.
"""

import numpy as np

from ..writers.aicity_submission import (
    BOX,
    CLASS,
    FRAME,
    OBJECT,
    SCENE,
    SubmissionError,
    check_rows,
)
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
    n = np.array([len(g) for g in gt_boxes], dtype=np.int64)
    m = np.array([len(p) for p in pred_boxes], dtype=np.int64)
    pairs = n * m
    all_gt = np.concatenate(gt_boxes) if n.sum() else np.zeros((0, 7))
    all_pred = np.concatenate(pred_boxes) if m.sum() else np.zeros((0, 7))
    gt_radius = 0.5 * np.hypot(all_gt[:, 3], all_gt[:, 4])
    pred_radius = 0.5 * np.hypot(all_pred[:, 3], all_pred[:, 4])
    gt_start, pred_start, pair_start = np.cumsum(n) - n, np.cumsum(m) - m, np.cumsum(pairs) - pairs
    values = np.zeros(int(pairs.sum()))
    for first, last in _frame_blocks(pairs):
        # Every (gt, prediction) pair of a block of frames at once; only pairs whose
        # footprints can touch are measured (the rest stay 0).
        frames = np.arange(first, last)
        count = pairs[frames]
        frame = np.repeat(frames, count)
        within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        gi = gt_start[frame] + within // np.maximum(m[frame], 1)
        pi = pred_start[frame] + within % np.maximum(m[frame], 1)
        dx = all_gt[gi, 0] - all_pred[pi, 0]
        dy = all_gt[gi, 1] - all_pred[pi, 1]
        reach = gt_radius[gi] + pred_radius[pi]
        near = np.flatnonzero(dx * dx + dy * dy < reach * reach)
        values[pair_start[first] + near] = iou_3d(
            all_gt[gi[near]], all_pred[pi[near]], aligned=True
        )
    splits = np.split(values, np.cumsum(pairs)[:-1])
    return [v.reshape(a, b) for v, a, b in zip(splits, n, m, strict=True)]


def _frame_blocks(pairs: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive frame ranges [first, last) of about PAIRS_PER_CHUNK pairs each."""
    blocks, first, total = [], 0, 0
    for index, count in enumerate(pairs.tolist()):
        total += count
        if total >= PAIRS_PER_CHUNK:
            blocks.append((first, index + 1))
            first, total = index + 1, 0
    if first < len(pairs):
        blocks.append((first, len(pairs)))
    return blocks


def _split_by_frame(rows: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """Rows grouped per entry of ``frames`` (sorted), in one sort rather than a scan per frame."""
    rows = rows[np.argsort(rows[:, FRAME], kind='stable')]
    bounds = np.searchsorted(rows[:, FRAME], frames, side='left')
    ends = np.searchsorted(rows[:, FRAME], frames, side='right')
    return [rows[b:e] for b, e in zip(bounds, ends, strict=True)]


def _sequence(gt: np.ndarray, pred: np.ndarray, frames: np.ndarray, kind: str, zero_distance):
    gt_split = _split_by_frame(gt, frames)
    pred_split = _split_by_frame(pred, frames)
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
    gt_rows = check_rows(gt_rows, 'ground truth', ground_truth=True)
    pred_rows = check_rows(pred_rows, 'predictions')
    gt_rows = gt_rows[(gt_rows[:, FRAME] >= 0) & (gt_rows[:, FRAME] < num_frames)]
    pred_rows = pred_rows[(pred_rows[:, FRAME] >= 0) & (pred_rows[:, FRAME] < num_frames)]
    unknown = set(np.unique(pred_rows[:, SCENE])) - set(np.unique(gt_rows[:, SCENE]))
    if unknown:
        raise SubmissionError(
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


def _ground_truth_classes(scores: dict, gt_rows: np.ndarray):
    """Per scene ``aicity_hota`` scored: (scene, its per-class scores, the ground-truth
    class ids there, their row counts)."""
    gt_rows = np.asarray(gt_rows, dtype=np.float64).reshape(-1, 11)
    for scene, scored in scores['per_scene_per_class'].items():
        in_scene = gt_rows[gt_rows[:, SCENE] == scene]
        classes, counts = np.unique(in_scene[:, CLASS].astype(int), return_counts=True)
        yield scene, scored, classes, counts


def classes_left_out(scores: dict, gt_rows: np.ndarray) -> list[tuple[int, int, int]]:
    """The (scene, class id, ground-truth rows) that ``aicity_hota`` left out: a class
    with ground truth in a scene and no predictions there, which the protocol skips
    (``every_class_hota`` scores it 0).

    Args:
        scores: what ``aicity_hota`` returned for ``gt_rows``.
        gt_rows: [G, 11] the ground-truth rows it scored (the same frame range).
    """
    return [
        (int(scene), int(c), int(n))
        for scene, scored, classes, counts in _ground_truth_classes(scores, gt_rows)
        for c, n in zip(classes, counts, strict=True)
        if int(c) not in scored
    ]


def every_class_hota(scores: dict, gt_rows: np.ndarray, metric: str = 'HOTA') -> float:
    """``aicity_hota``'s final ``metric`` with a class that has ground truth and no
    predictions in a scene scored 0 there instead of skipped: per scene the mean over every
    ground-truth class, scenes weighted by their ground-truth rows (as the protocol's).

    Args:
        scores: what ``aicity_hota`` returned for ``gt_rows``.
        gt_rows: [G, 11] the ground-truth rows it scored (the same frame range).
    """
    total, weight = 0.0, 0
    for _, scored, classes, counts in _ground_truth_classes(scores, gt_rows):
        if not len(classes):
            continue
        mean = np.mean([scored.get(int(c), {}).get(metric, 0.0) for c in classes])
        total += mean * counts.sum()
        weight += int(counts.sum())
    return float(total / weight) if weight else 0.0
