"""The box-error breakdown (where 3D-IoU HOTA is lost), ground-truth substitution and
`tools/aicity_eval.py errors` / `whatif`."""

import json

import numpy as np
import pytest

from mmsparse4d.evaluation.functional import (
    box_error_breakdown,
    match_by_centre,
    substitute_ground_truth,
    yaw_error_modulo_pi,
)
from mmsparse4d.evaluation.writers import SubmissionError, write_submission
from mmsparse4d.utils.input_error import InputError

PERSON, FORKLIFT, NOVA_CARTER = 0, 1, 2


def row(cls, obj, frame, x, y, z=0.9, w=0.5, l=0.6, h=1.8, yaw=0.3, scene=1):  # noqa: E741
    return [scene, cls, obj, frame, x, y, z, w, l, h, yaw]


def test_yaw_error_is_taken_modulo_pi():
    gt = np.array([0.3, 0.3, 0.3, 3.0, -3.0])
    pred = np.array([0.3 + np.pi, 0.3 + np.pi / 2, 0.2, -3.0, 3.0])
    expected = [0.0, np.pi / 2, 0.1, 2 * np.pi - 6.0, 2 * np.pi - 6.0]
    np.testing.assert_allclose(yaw_error_modulo_pi(pred, gt), expected, atol=1e-12)


def test_pairs_stay_within_scene_class_frame_and_distance():
    gt = np.array(
        [
            row(PERSON, 1, 0, 0, 0),
            row(PERSON, 2, 0, 5, 0),
            row(PERSON, 1, 1, 0, 0),
            row(FORKLIFT, 3, 0, 10, 0),
        ]
    )
    pred = np.array(
        [
            row(PERSON, 7, 0, 5.1, 0),  # the second person
            row(PERSON, 8, 0, 0.2, 0),  # the first person
            row(PERSON, 7, 1, 3.0, 0),  # 3 m from the only person of frame 1: unmatched
            row(PERSON, 9, 0, 10.0, 0),  # on the forklift, but of another class
        ]
    )
    matched_gt, matched_pred, gt_mask, pred_mask = match_by_centre(gt, pred, max_distance=2.0)
    assert sorted(zip(matched_gt.tolist(), matched_pred.tolist(), strict=True)) == [(0, 1), (1, 0)]
    assert gt_mask.tolist() == [True, True, False, False]
    assert pred_mask.tolist() == [True, True, False, False]


def test_breakdown_counts_errors_and_oracles():
    gt, pred = [], []
    for frame in range(4):
        # A person found 0.3 m off in x, 0.2 m too wide and turned by pi (the same box).
        gt.append(row(PERSON, 1, frame, 0, 0, yaw=0.3))
        pred.append(row(PERSON, 5, frame, 0.3, 0, w=0.7, yaw=0.3 + np.pi))
        # A forklift found as a NovaCarter: missed and confused; the NovaCarter is false.
        gt.append(row(FORKLIFT, 2, frame, 8, 0, w=2.6, l=1.2, h=2.2))
        pred.append(row(NOVA_CARTER, 6, frame, 8.5, 0, w=0.7, l=0.5, h=0.4))
    breakdown = box_error_breakdown(np.array(gt), np.array(pred))

    person = breakdown[PERSON]
    assert (person['gt'], person['matched'], person['missed'], person['false_positives']) == (
        4,
        4,
        0,
        0,
    )
    assert person['centre_xy_median'] == pytest.approx(0.3)
    assert person['z_median'] == pytest.approx(0.0)
    assert person['w_median'] == pytest.approx(0.2)
    assert person['l_median'] == pytest.approx(0.0)
    assert person['yaw_deg_median'] == pytest.approx(0.0, abs=1e-9)
    # With the centre restored only the width is wrong: the ground truth lies inside the
    # prediction, IoU 0.5 / 0.7.
    assert person['oracle_centre_xy'] == pytest.approx(0.5 / 0.7)
    assert person['oracle_yaw'] == pytest.approx(person['iou'])
    # The too-wide box covers some of the centre error, so righting the size alone lowers
    # the IoU: the oracles are not additive, each is one counterfactual.
    assert person['oracle_size'] < person['iou'] < person['oracle_centre_xy'] < 1.0

    forklift = breakdown[FORKLIFT]
    assert (forklift['gt'], forklift['matched'], forklift['missed'], forklift['confused']) == (
        4,
        0,
        4,
        4,
    )
    assert 'iou' not in forklift  # no matched pair to measure
    assert breakdown[NOVA_CARTER]['false_positives'] == 4
    assert breakdown[NOVA_CARTER]['gt'] == 0


def test_bad_input_names_the_problem():
    good = np.array([row(PERSON, 1, 0, 0, 0)])
    with pytest.raises(ValueError, match='max_distance must be positive'):
        box_error_breakdown(good, good, max_distance=0)
    with pytest.raises(SubmissionError, match='predictions: row 0: unknown class_id 9'):
        box_error_breakdown(good, np.array([row(9, 1, 0, 0, 0)]))


def test_errors_command_prints_the_tables_and_writes_json(tmp_path, capsys):
    from tools.aicity_eval import main

    gt_rows = np.array([row(PERSON, 1, f, 0, 0) for f in range(3)])
    pred_rows = np.array([row(PERSON, 4, f, 0.1, 0) for f in range(3)])
    write_submission(tmp_path / 'gt.txt', gt_rows)
    write_submission(tmp_path / 'pred.txt', pred_rows)
    out = tmp_path / 'errors.json'
    main(
        [
            'errors',
            '--ground-truth',
            str(tmp_path / 'gt.txt'),
            '--predictions',
            str(tmp_path / 'pred.txt'),
            '--out',
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert 'oracle_centre_xy' in printed and 'Person' in printed
    saved = json.loads(out.read_text())
    assert saved['Person']['matched'] == 3
    assert saved['Person']['centre_xy_median'] == pytest.approx(0.1)
    with pytest.raises(SubmissionError, match='absent.txt: no such file'):
        main(
            [
                'errors',
                '--ground-truth',
                str(tmp_path / 'absent.txt'),
                '--predictions',
                str(tmp_path / 'pred.txt'),
            ]
        )


def test_substitution_takes_the_named_parts_of_matched_boxes_only():
    gt = np.array([row(PERSON, 1, 0, 0, 0, yaw=0.3), row(FORKLIFT, 2, 0, 5, 0, w=2.6)])
    pred = np.array(
        [
            row(PERSON, 7, 0, 0.2, 0.1, z=1.0, w=0.7, yaw=1.2),  # matched to the person
            row(PERSON, 8, 0, 5.0, 0.0, yaw=1.2),  # on the forklift, but another class
        ]
    )
    out = substitute_ground_truth(gt, pred, ['yaw', 'centre_xy'], max_distance=1.0)
    assert out[0].tolist() == row(PERSON, 7, 0, 0, 0, z=1.0, w=0.7, yaw=0.3)
    assert out[1].tolist() == pred[1].tolist()
    assert pred[0, 10] == pytest.approx(1.2)  # the input is not modified
    with pytest.raises(ValueError, match='parts must be some of'):
        substitute_ground_truth(gt, pred, ['heading'])


def test_whatif_command_scores_each_variant(tmp_path, capsys):
    from tools.aicity_eval import main

    forklift = dict(w=2.6, l=1.2, h=2.2)
    gt_rows = np.array([row(FORKLIFT, 1, f, 0.2 * f, 0, yaw=0.0, **forklift) for f in range(4)])
    pred_rows = np.array(
        [row(FORKLIFT, 3, f, 0.2 * f + 0.3, 0.1, yaw=0.7, **forklift) for f in range(4)]
    )
    write_submission(tmp_path / 'gt.txt', gt_rows)
    write_submission(tmp_path / 'pred.txt', pred_rows)
    out = tmp_path / 'whatif.json'
    main(
        [
            'whatif',
            '--ground-truth',
            str(tmp_path / 'gt.txt'),
            '--predictions',
            str(tmp_path / 'pred.txt'),
            '--parts',
            'yaw',
            'yaw+centre_xy',
            '--out',
            str(out),
        ]
    )
    assert 'yaw+centre_xy from ground truth' in capsys.readouterr().out
    saved = json.loads(out.read_text())
    submitted = saved['as submitted']['HOTA']
    assert submitted < saved['yaw from ground truth']['HOTA'] < 100.0
    # Everything the boxes got wrong replaced: one track, each frame exact.
    assert saved['yaw+centre_xy from ground truth']['HOTA'] == pytest.approx(100.0)
    with pytest.raises(InputError, match="--parts yaw\\+heading: unknown part 'heading'"):
        main(
            [
                'whatif',
                '--ground-truth',
                str(tmp_path / 'gt.txt'),
                '--predictions',
                str(tmp_path / 'pred.txt'),
                '--parts',
                'yaw+heading',
            ]
        )
