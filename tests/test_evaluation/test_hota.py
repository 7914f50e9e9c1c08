"""HOTA equals the trackeval package (1.3.0) on randomised sequences."""

import numpy as np
import pytest

from mmsparse4d.evaluation.functional import ALPHAS, METRICS, frame_similarities, hota_sequence

trackeval_metrics = pytest.importorskip('trackeval.metrics')


def random_sequence(rng, frames=40, objects=12, crowded=False):
    """Tracks with id switches, fragments, misses, false positives and empty frames."""
    start = rng.uniform(-15, 15, (objects, 2))
    heading = rng.uniform(-np.pi, np.pi, objects)
    speed = rng.uniform(0.05, 0.3, objects)
    if crowded:
        start = rng.uniform(-2, 2, (objects, 2))
    sizes = rng.uniform(0.4, 2.5, (objects, 3))
    alive = np.sort(rng.integers(0, frames, (objects, 2)), axis=1)
    gt_ids, gt_boxes, pred_ids, pred_boxes = [], [], [], []
    next_id = 1000
    mapping = {i: 500 + i for i in range(objects)}
    for t in range(frames):
        if rng.random() < 0.2:  # an id switch between two predicted tracks
            a, b = rng.choice(objects, 2, replace=False)
            mapping[a], mapping[b] = mapping[b], mapping[a]
        ids, boxes, pids, pboxes = [], [], [], []
        empty_gt, empty_pred = rng.random() < 0.05, rng.random() < 0.05
        for i in range(objects):
            if not alive[i, 0] <= t <= alive[i, 1]:
                continue
            centre = start[i] + t * speed[i] * np.array([np.cos(heading[i]), np.sin(heading[i])])
            box = np.array([*centre, sizes[i, 2] / 2, *sizes[i], heading[i]])
            if not empty_gt:
                ids.append(i * 7 + 3)
                boxes.append(box)
            if empty_pred or rng.random() < 0.15:
                continue  # missed
            if rng.random() < 0.05:  # fragment: the track restarts with a new id
                mapping[i] = next_id
                next_id += 1
            noisy = box + np.r_[rng.normal(0, 0.25, 3), rng.normal(0, 0.1, 3), rng.normal(0, 0.2)]
            noisy[3:6] = np.abs(noisy[3:6]) + 0.05
            pids.append(mapping[i])
            pboxes.append(noisy)
        for _ in range(rng.poisson(0.7)):  # false positives
            pids.append(next_id)
            next_id += 1
            pboxes.append(np.r_[rng.uniform(-15, 15, 2), 0.8, 0.6, 0.6, 1.7, 0.0])
        gt_ids.append(np.array(ids, dtype=int))
        gt_boxes.append(np.array(boxes).reshape(-1, 7))
        pred_ids.append(np.array(pids, dtype=int))
        pred_boxes.append(np.array(pboxes).reshape(-1, 7))
    return gt_ids, gt_boxes, pred_ids, pred_boxes


def trackeval_hota(gt_ids, pred_ids, similarities):
    def remap(ids):
        unique = np.unique(np.concatenate(ids)) if ids else np.zeros(0)
        return [np.searchsorted(unique, i) for i in ids], len(unique)

    gt, num_gt = remap(gt_ids)
    pred, num_pred = remap(pred_ids)
    data = {
        'num_gt_dets': sum(len(i) for i in gt_ids),
        'num_tracker_dets': sum(len(i) for i in pred_ids),
        'num_gt_ids': num_gt,
        'num_tracker_ids': num_pred,
        'gt_ids': gt,
        'tracker_ids': pred,
        'similarity_scores': similarities,
    }
    return trackeval_metrics.HOTA().eval_sequence(data)


@pytest.mark.parametrize('seed', range(8))
@pytest.mark.parametrize('similarity', ['iou3d', 'center'])
def test_equal_to_trackeval(seed, similarity):
    rng = np.random.default_rng(seed)
    gt_ids, gt_boxes, pred_ids, pred_boxes = random_sequence(rng, crowded=seed % 2 == 1)
    similarities = frame_similarities(gt_boxes, pred_boxes, similarity)
    ours = hota_sequence(gt_ids, pred_ids, similarities)
    reference = trackeval_hota(gt_ids, pred_ids, similarities)
    for name in (*METRICS, 'HOTA_TP', 'HOTA_FN', 'HOTA_FP'):
        np.testing.assert_allclose(ours[name], reference[name], rtol=0, atol=1e-9, err_msg=name)
    assert 0.05 < np.mean(ours['HOTA']) < 0.95  # a non-trivial case


def test_empty_predictions_and_empty_ground_truth():
    sims = [np.zeros((2, 0)), np.zeros((1, 0))]
    res = hota_sequence([np.array([1, 2]), np.array([1])], [np.zeros(0, int)] * 2, sims)
    assert np.all(res['HOTA'] == 0) and np.all(res['HOTA_FN'] == 3) and np.all(res['LocA'] == 1)
    res = hota_sequence([np.zeros(0, int)], [np.array([4])], [np.zeros((0, 1))])
    assert np.all(res['HOTA_FP'] == 1)
    assert len(ALPHAS) == 19


def test_duplicate_ids_in_a_frame_are_refused():
    with pytest.raises(ValueError, match='frame 0 has the same track id more than once'):
        hota_sequence([np.array([1])], [np.array([3, 3])], [np.ones((1, 2))])
