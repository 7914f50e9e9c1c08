"""3D IoU of yaw-rotated boxes and the centre similarity."""

import numpy as np
import pytest
import torch
from mmcv.ops import box_iou_rotated

from mmsparse4d.evaluation.functional import center_similarity, iou_3d


def test_known_overlaps():
    box = np.array([[0, 0, 1, 2, 1, 2, 0.0]])
    others = np.array(
        [
            [0, 0, 1, 2, 1, 2, np.pi / 2],  # turned a quarter: footprint overlap 1 of 3
            [1, 0, 1, 2, 1, 2, 0],  # shifted along x by half its length
            [0, 0, 2, 2, 1, 2, 0],  # raised by half its height
            [0, 0, 1, 2, 1, 2, np.pi],  # turned half: the same box
            [5, 5, 1, 2, 1, 2, 0],  # apart
        ]
    )
    np.testing.assert_allclose(iou_3d(box, others)[0], [1 / 3, 1 / 3, 1 / 3, 1, 0], atol=1e-6)


def test_pruned_pairs_equal_the_full_computation():
    rng = np.random.default_rng(0)
    centres = np.c_[rng.uniform(-4, 4, (300, 2)), rng.uniform(0, 1, 300)]
    boxes = np.c_[centres, rng.uniform(0.3, 3, (300, 3)), rng.uniform(-np.pi, np.pi, 300)]
    a, b = boxes[:150], boxes[150:]
    ours = iou_3d(a, b)
    bev = (
        box_iou_rotated(
            torch.tensor(a[:, [0, 1, 3, 4, 6]]).float(), torch.tensor(b[:, [0, 1, 3, 4, 6]]).float()
        )
        .double()
        .numpy()
    )
    area_a, area_b = (a[:, 3] * a[:, 4])[:, None], (b[:, 3] * b[:, 4])[None]
    inter_bev = bev * (area_a + area_b) / (1 + bev)
    top = np.minimum((a[:, 2] + a[:, 5] / 2)[:, None], (b[:, 2] + b[:, 5] / 2)[None])
    bottom = np.maximum((a[:, 2] - a[:, 5] / 2)[:, None], (b[:, 2] - b[:, 5] / 2)[None])
    inter = inter_bev * np.clip(top - bottom, 0, None)
    expected = inter / (area_a * a[:, 5][:, None] + area_b * b[:, 5][None] - inter)
    # mmcv computes in float32 (and fails for nearly coincident boxes, tested below).
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert (ours > 0).mean() > 0.05
    np.testing.assert_allclose(iou_3d(a, b[:150], aligned=True), np.diag(ours), atol=1e-12)
    with pytest.raises(ValueError, match='as many boxes on both sides'):
        iou_3d(a, b[:10], aligned=True)


def test_center_similarity():
    a = np.array([[0, 0, 0, 1, 1, 1, 0.0]])
    b = np.array([[1, 0, 0, 1, 1, 1, 0.0], [3, 0, 0, 1, 1, 1, 0.0]])
    np.testing.assert_allclose(center_similarity(a, b, zero_distance=2.0), [[0.5, 0.0]])


def test_nearly_coincident_boxes_have_iou_one():
    """mmcv's float32 rotated IoU gave 0.33 for boxes 1e-6 m apart."""
    rng = np.random.default_rng(0)
    boxes = np.c_[
        rng.uniform(-10, 10, (300, 3)), rng.uniform(0.5, 3, (300, 3)), rng.uniform(-3, 3, 300)
    ]
    shifted = boxes.astype(np.float32).astype(np.float64) + rng.normal(0, 1e-6, boxes.shape)
    assert iou_3d(boxes, shifted, aligned=True).min() > 0.9999


def test_rotated_overlap_matches_mmcv_on_random_pairs():
    import torch
    from mmcv.ops import box_iou_rotated

    from mmsparse4d.evaluation.functional.similarity import rotated_overlap

    rng = np.random.default_rng(1)

    def random_boxes(count):
        return np.c_[
            rng.uniform(-1, 1, (count, 2)),
            np.zeros(count),
            rng.uniform(0.5, 3, (count, 3)),
            rng.uniform(-3, 3, count),
        ]

    a, b = random_boxes(2000), random_boxes(2000)
    bev = [torch.tensor(x[:, [0, 1, 3, 4, 6]], dtype=torch.float32) for x in (a, b)]
    iou = box_iou_rotated(*bev, aligned=True).double().numpy()
    area_a, area_b = a[:, 3] * a[:, 4], b[:, 3] * b[:, 4]
    expected = iou * (area_a + area_b) / (1 + iou)
    np.testing.assert_allclose(rotated_overlap(a, b), expected, atol=1e-4)
    # A box inside another overlaps by its own area; disjoint boxes by nothing.
    inner = np.array([[0, 0, 0, 1, 1, 1, 0.3]])
    outer = np.array([[0, 0, 0, 4, 4, 1, 1.0]])
    far = np.array([[9, 9, 0, 1, 1, 1, 0.0]])
    assert rotated_overlap(inner, outer)[0] == pytest.approx(1.0)
    assert rotated_overlap(outer, inner)[0] == pytest.approx(1.0)
    assert rotated_overlap(inner, far)[0] == 0.0
