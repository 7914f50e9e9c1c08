"""Comparing the tracks of two trackers (back ends) frame by frame."""

import numpy as np


def _reported(result: dict, threshold: float) -> dict:
    keep = result['scores_3d'] >= threshold
    return {key: result[key][keep] for key in ('track_ids', 'bboxes_3d', 'scores_3d', 'labels_3d')}


def compare_frame(a: dict, b: dict, score_threshold: float = 0.0) -> dict:
    """Two results of one frame (``track_ids``, ``bboxes_3d``, ``scores_3d``), matched by id,
    of the tracks each reports (score at least ``score_threshold``; a track one side
    reports and the other does not counts as another id).

    Returns:
        dict: ``same_ids`` (the same set of track ids), ``box_error`` (largest absolute
        difference of x, y, z, w, l, h in metres over the common ids), ``yaw_error``
        (radians, wrapped), ``score_error`` and ``label_mismatches``.
    """
    a, b = _reported(a, score_threshold), _reported(b, score_threshold)
    ids_a, ids_b = a['track_ids'], b['track_ids']
    common, index_a, index_b = np.intersect1d(ids_a, ids_b, return_indices=True)
    same = len(common) == len(ids_a) == len(ids_b)
    boxes_a, boxes_b = a['bboxes_3d'][index_a], b['bboxes_3d'][index_b]
    yaw = np.angle(np.exp(1j * (boxes_a[:, 6] - boxes_b[:, 6])))
    return {
        'same_ids': bool(same),
        'box_error': float(np.abs(boxes_a[:, :6] - boxes_b[:, :6]).max(initial=0.0)),
        'yaw_error': float(np.abs(yaw).max(initial=0.0)),
        'score_error': float(
            np.abs(a['scores_3d'][index_a] - b['scores_3d'][index_b]).max(initial=0.0)
        ),
        'label_mismatches': int((a['labels_3d'][index_a] != b['labels_3d'][index_b]).sum()),
    }


def summarise(frames: list[dict]) -> dict:
    """The worst of ``compare_frame`` over a sequence."""
    return {
        'frames': len(frames),
        'frames_with_other_ids': sum(not f['same_ids'] for f in frames),
        'box_error': max((f['box_error'] for f in frames), default=0.0),
        'yaw_error': max((f['yaw_error'] for f in frames), default=0.0),
        'score_error': max((f['score_error'] for f in frames), default=0.0),
        'label_mismatches': sum(f['label_mismatches'] for f in frames),
    }
