"""AI City 2025 aggregation, the submission format and the other writers."""

import json

import numpy as np
import pytest

from mmsparse4d.datasets.aicity import load_ground_truth
from mmsparse4d.evaluation.functional import (
    aicity_hota,
    frame_similarities,
    hota_sequence,
    summarise,
)
from mmsparse4d.evaluation.writers import (
    SubmissionError,
    ground_truth_rows,
    nvschema_frame,
    read_frame_results,
    read_nvschema,
    read_submission,
    write_frame_results,
    write_nvschema,
    write_submission,
)


def rows_for(scene, cls, obj, frames, start, step=0.2, noise=0.0, rng=None):
    rows = []
    for k, frame in enumerate(frames):
        jitter = rng.normal(0, noise, 3) if rng is not None else np.zeros(3)
        rows.append([scene, cls, obj, frame, start + k * step + jitter[0], 1.0 + jitter[1],
                     0.9 + jitter[2], 0.5, 0.6, 1.8, 0.3])  # fmt: skip
    return rows


def test_protocol_weights_skips_and_zero_scenes():
    rng = np.random.default_rng(0)
    frames = list(range(20))
    gt = (
        rows_for(17, 0, 1, frames, 0.0) + rows_for(17, 0, 2, frames, 5.0)
        + rows_for(17, 1, 3, frames, -5.0)  # class 1: no predictions -> skipped
        + rows_for(18, 0, 1, frames, 0.0)  # scene 18: no predictions -> 0 with weight
    )  # fmt: skip
    pred = rows_for(17, 0, 7, frames, 0.0, noise=0.1, rng=rng) + rows_for(
        17, 0, 8, frames[:12], 5.0, noise=0.1, rng=rng
    )
    pred += rows_for(17, 0, 9, [25], 0.0)  # a frame the ground truth lacks: dropped
    result = aicity_hota(np.array(gt), np.array(pred))
    assert set(result['per_scene_per_class'][17]) == {0}
    assert result['per_scene_per_class'][18] == {}
    scene17 = result['per_scene'][17]
    assert scene17['weight'] == 60 and result['per_scene'][18]['weight'] == 20
    assert result['per_scene'][18]['HOTA'] == 0.0
    assert result['final']['HOTA'] == pytest.approx(scene17['HOTA'] * 60 / 80)
    # The class score is exactly HOTA of that one sequence.
    gt0 = np.array(rows_for(17, 0, 1, frames, 0.0) + rows_for(17, 0, 2, frames, 5.0))
    pred0 = np.array(pred[:-1])
    g = [gt0[gt0[:, 3] == f] for f in frames]
    p = [pred0[pred0[:, 3] == f] for f in frames]
    sims = frame_similarities([x[:, 4:] for x in g], [x[:, 4:] for x in p])
    expected = summarise(hota_sequence([x[:, 2] for x in g], [x[:, 2] for x in p], sims))
    assert scene17['HOTA'] == pytest.approx(100 * expected['HOTA'], abs=1e-9)


def test_ground_truth_scores_100_against_itself(h5_scene_gt):
    rows = ground_truth_rows(h5_scene_gt, scene_id=3)
    for similarity in ('iou3d', 'center'):
        final = aicity_hota(rows, rows, similarity=similarity)['final']
        for name in ('HOTA', 'DetA', 'AssA', 'LocA'):
            assert final[name] == pytest.approx(100.0, abs=1e-4)


def test_unknown_prediction_scene_is_refused():
    gt = np.array(rows_for(17, 0, 1, [0, 1], 0.0))
    with pytest.raises(ValueError, match='scenes the ground truth lacks: \\[99\\]'):
        aicity_hota(gt, np.array(rows_for(99, 0, 1, [0], 0.0)))


def test_submission_round_trip_and_format(tmp_path):
    rows = np.array(rows_for(17, 2, 4, [0, 1, 2], 1.234567))
    path = tmp_path / 'track1.txt'
    write_submission(path, rows)
    first = path.read_text().splitlines()[0]
    assert first == '17 2 4 0 1.23 1.00 0.90 0.50 0.60 1.80 0.30'
    np.testing.assert_allclose(read_submission(path), rows, atol=0.005)


@pytest.mark.parametrize(
    'rows, message',
    [
        (
            rows_for(1, 0, 5, [0], 0) + rows_for(1, 3, 5, [1], 0),
            'object id 5 is used by several classes in scene 1',
        ),
        (rows_for(1, 9, 5, [0], 0), 'unknown class id 9'),
        (rows_for(1, 0, 0, [0], 0), 'object ids must be positive'),
        (rows_for(1, 0, 5, [0, 0], 0), 'object 5 of class 0 appears twice in scene 1, frame 0'),
    ],
)
def test_submission_errors_before_writing(tmp_path, rows, message):
    path = tmp_path / 'bad.txt'
    with pytest.raises(SubmissionError, match=message):
        write_submission(path, np.array(rows))
    assert not path.exists()


def test_reader_names_the_line(tmp_path):
    path = tmp_path / 'x.txt'
    good = '17 0 1 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30'
    path.write_text(good + '\n' + good.replace(' 0 1.00', '  1 1.00', 1) + '\n')
    with pytest.raises(SubmissionError, match='x.txt:2: 12 fields'):
        read_submission(path)


def test_nvschema_and_frame_results_round_trip(tmp_path):
    boxes = np.array([[1.0, 2.0, 0.9, 0.5, 0.6, 1.8, 0.25]])
    frame = nvschema_frame(12, 'bev-sensor-1', boxes, np.array([0.9]), ['Person'], np.array([41]),
                           embeddings=np.array([[0.1, 0.2]]))  # fmt: skip
    write_nvschema(
        tmp_path / 's.jsonl',
        [frame, nvschema_frame(13, 'bev-sensor-1', np.zeros((0, 7)), [], [], [])],
    )
    lines = read_nvschema(tmp_path / 's.jsonl')
    assert lines[0]['timestamp'] == '2026-01-01T00:00:00.400Z' and lines[0]['id'] == '12'
    obj = lines[0]['objects'][0]
    assert obj['id'] == '41' and obj['bbox3d']['coordinates'] == [
        1.0,
        2.0,
        0.9,
        0.5,
        0.6,
        1.8,
        0.0,
        0.0,
        0.25,
    ]
    assert obj['bbox3d']['embedding'] == [{'vector': [0.1, 0.2]}] and lines[1]['objects'] == []
    results = {
        'boxes_3d': np.zeros((2, 10)),
        'scores_3d': np.array([0.5, 0.2]),
        'labels_3d': np.array([0, 3]),
    }
    write_frame_results(tmp_path / 'f.json', 'tok', results)
    back = read_frame_results(tmp_path / 'f.json')
    assert back['token'] == 'tok' and back['boxes_3d'].shape == (2, 10)
    json.loads((tmp_path / 'f.json').read_text())


@pytest.fixture(scope='module')
def h5_scene_gt(h5_scene):
    return load_ground_truth(h5_scene[0] / 'ground_truth.json')


def test_command_line_scores_ground_truth_against_itself(h5_scene, tmp_path, capsys):
    from tools.aicity_eval import main

    gt_text = tmp_path / 'gt.txt'
    main(
        [
            'convert-gt',
            str(h5_scene[0] / 'ground_truth.json'),
            '--scene-id',
            '17',
            '--out',
            str(gt_text),
        ]
    )
    rows = read_submission(gt_text)
    assert set(rows[:, 0]) == {17} and len(rows) == 6 * 12
    main(
        [
            'score',
            '--ground-truth',
            str(gt_text),
            '--predictions',
            str(gt_text),
            '--out',
            str(tmp_path / 's.json'),
        ]
    )
    printed = capsys.readouterr().out
    assert 'final' in printed and '100.000' in printed
    summary = json.loads((tmp_path / 's.json').read_text())
    assert summary['final']['HOTA'] == pytest.approx(100, abs=1e-4)
