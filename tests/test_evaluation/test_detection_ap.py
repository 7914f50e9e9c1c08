"""Detection AP equals the nuscenes-devkit algorithm (accumulate, calc_ap, calc_tp)."""

import numpy as np
import pytest

from mmsparse4d.evaluation.functional import accumulate, calc_ap, calc_tp, detection_ap

algo = pytest.importorskip('nuscenes.eval.detection.algo')
from nuscenes.eval.common.data_classes import EvalBoxes  # noqa: E402
from nuscenes.eval.common.utils import center_distance  # noqa: E402
from nuscenes.eval.detection.data_classes import DetectionBox  # noqa: E402

# The devkit only accepts nuScenes class names: ours stand in under them.
NAMES = ('pedestrian', 'car', 'bicycle')


def random_scene(rng, samples=12):
    gt, pred = {}, {}
    for s in range(samples):
        token = f'sample_{s}'
        count = rng.integers(0, 9)
        boxes = np.c_[
            rng.uniform(-20, 20, (count, 2)),
            rng.uniform(0.5, 1, count),
            rng.uniform(0.4, 3, (count, 3)),
            rng.uniform(-np.pi, np.pi, count),
        ]
        labels = rng.integers(0, len(NAMES), count)
        gt[token] = (boxes, labels)
        keep = rng.random(count) < 0.8
        kept = int(keep.sum())
        noise = np.c_[
            rng.normal(0, 0.8, (kept, 3)), rng.normal(0, 0.2, (kept, 3)), rng.normal(0, 0.4, kept)
        ]
        noisy = boxes[keep] + noise
        noisy[:, 3:6] = np.abs(noisy[:, 3:6]) + 0.1
        extra = rng.integers(0, 4)
        fake = np.c_[
            rng.uniform(-20, 20, (extra, 2)), np.ones(extra), np.ones((extra, 3)), np.zeros(extra)
        ]
        scores = rng.uniform(0, 1, keep.sum() + extra).round(2)  # ties happen
        pred[token] = (
            np.r_[noisy, fake],
            scores,
            np.r_[labels[keep], rng.integers(0, len(NAMES), extra)],
        )
    return gt, pred


def to_devkit(gt, pred):
    def box(token, values, name, score=-1.0):
        yaw = float(values[6])
        return DetectionBox(
            sample_token=token,
            translation=tuple(values[:3]),
            size=tuple(values[3:6]),
            rotation=(np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)),
            velocity=(0.0, 0.0),
            detection_name=name,
            detection_score=float(score),
            attribute_name='',
        )

    gt_boxes, pred_boxes = EvalBoxes(), EvalBoxes()
    for token, (boxes, labels) in gt.items():
        gt_boxes.add_boxes(
            token, [box(token, b, NAMES[c]) for b, c in zip(boxes, labels, strict=True)]
        )
    for token, (boxes, scores, labels) in pred.items():
        pred_boxes.add_boxes(
            token,
            [box(token, b, NAMES[c], s) for b, s, c in zip(boxes, scores, labels, strict=True)],
        )
    return gt_boxes, pred_boxes


@pytest.mark.parametrize('seed', range(6))
def test_equal_to_nuscenes_devkit(seed):
    rng = np.random.default_rng(seed)
    gt, pred = random_scene(rng)
    gt_boxes, pred_boxes = to_devkit(gt, pred)
    for label, name in enumerate(NAMES):
        for threshold in (0.5, 1.0, 2.0, 4.0):
            reference = algo.accumulate(gt_boxes, pred_boxes, name, center_distance, threshold)
            ours = accumulate(gt, pred, label, threshold)
            expected_ap = algo.calc_ap(reference, 0.1, 0.1)
            assert calc_ap(ours) == pytest.approx(expected_ap, abs=1e-12)
            if ours is not None:
                np.testing.assert_allclose(ours['precision'], reference.precision, atol=1e-12)
        reference = algo.accumulate(gt_boxes, pred_boxes, name, center_distance, 2.0)
        ours = accumulate(gt, pred, label, 2.0)
        for ours_name, devkit_name in (
            ('trans_err', 'trans_err'),
            ('scale_err', 'scale_err'),
            ('orient_err', 'orient_err'),
        ):
            assert calc_tp(ours, ours_name) == pytest.approx(
                algo.calc_tp(reference, 0.1, devkit_name), abs=1e-9
            )


def test_map_summary_and_empty_class():
    rng = np.random.default_rng(0)
    gt, pred = random_scene(rng)
    summary = detection_ap(gt, pred, NAMES + ('nobody',))
    assert summary['per_class']['nobody']['AP'] == 0.0
    assert summary['per_class']['nobody']['trans_err'] == 1.0
    assert 0 < summary['mAP'] < 1
    perfect = {t: (b, np.ones(len(b)), lab) for t, (b, lab) in gt.items()}
    assert detection_ap(gt, perfect, NAMES)['mAP'] == pytest.approx(1.0)
