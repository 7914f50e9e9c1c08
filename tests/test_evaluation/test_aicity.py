"""AI City 2025 aggregation, the submission format and the other writers."""

import json

import numpy as np
import pytest

from mmsparse4d.datasets.aicity import load_ground_truth
from mmsparse4d.evaluation.functional import (
    aicity_hota,
    classes_left_out,
    every_class_hota,
    frame_similarities,
    hota_sequence,
    summarise,
)
from mmsparse4d.evaluation.writers import (
    FIELDS,
    SubmissionError,
    SubmissionWarning,
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
        rows.append(
            [
                scene,
                cls,
                obj,
                frame,
                start + k * step + jitter[0],
                1.0 + jitter[1],
                0.9 + jitter[2],
                0.5,
                0.6,
                1.8,
                0.3,
            ]
        )
    return rows


def test_protocol_weights_skips_and_zero_scenes():
    rng = np.random.default_rng(0)
    frames = list(range(20))
    gt = (
        rows_for(17, 0, 1, frames, 0.0)
        + rows_for(17, 0, 2, frames, 5.0)
        + rows_for(17, 1, 3, frames, -5.0)  # class 1: no predictions -> skipped
        + rows_for(18, 0, 1, frames, 0.0)  # scene 18: no predictions -> 0 with weight
    )
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


def test_every_class_hota_scores_a_class_left_out_as_0():
    """The protocol skips a class without predictions, so leaving out a class found badly
    raises its HOTA; ``every_class_hota`` scores that class 0 instead."""
    rng = np.random.default_rng(1)
    frames = list(range(20))
    gt = np.array(
        rows_for(17, 0, 1, frames, 0.0)
        + rows_for(17, 1, 3, frames, -5.0)
        + rows_for(18, 0, 1, frames[:10], 0.0)
    )
    person = rows_for(17, 0, 7, frames, 0.0)
    poor_forklift = rows_for(17, 1, 8, frames, -5.0, noise=0.3, rng=rng)
    other_scene = rows_for(18, 0, 2, frames[:10], 0.0)
    everything = aicity_hota(gt, np.array(person + poor_forklift + other_scene))
    without = aicity_hota(gt, np.array(person + other_scene))
    assert without['final']['HOTA'] > everything['final']['HOTA']  # the protocol's reward
    assert every_class_hota(without, gt) < every_class_hota(everything, gt)
    # With every class predicted it is the protocol's HOTA; weights are ground-truth rows.
    assert every_class_hota(everything, gt) == pytest.approx(everything['final']['HOTA'])
    scene17 = without['per_scene_per_class'][17][0]['HOTA'] / 2  # class 1 scored 0
    expected = (scene17 * 40 + without['per_scene'][18]['HOTA'] * 10) / 50
    assert every_class_hota(without, gt) == pytest.approx(expected)
    assert every_class_hota(without, gt, 'DetA') < without['final']['DetA']
    assert classes_left_out(without, gt) == [(17, 1, 20)]  # scene, class, ground-truth rows
    assert classes_left_out(everything, gt) == []


def test_ground_truth_scores_100_against_itself(h5_scene_gt):
    rows = ground_truth_rows(h5_scene_gt, scene_id=3)
    assert rows[:, 2].min() == 0  # the synthetic ids start at 0 and are kept
    predictions = rows.copy()
    predictions[:, 2] += 1  # predicted ids must be >= 1; HOTA only compares ids for equality
    for similarity in ('iou3d', 'center'):
        final = aicity_hota(rows, predictions, similarity=similarity)['final']
        for name in ('HOTA', 'DetA', 'AssA', 'LocA'):
            assert final[name] == pytest.approx(100.0, abs=1e-4)


def test_ground_truth_rows_keep_the_ids_of_the_json(h5_scene):
    path = h5_scene[0] / 'ground_truth.json'
    content = json.loads(path.read_text())
    written = {
        (int(frame), item['object id']) for frame, items in content.items() for item in items
    }
    rows = ground_truth_rows(load_ground_truth(path), scene_id=3)
    assert {(int(frame), int(obj)) for frame, obj in rows[:, [3, 2]]} == written


def test_hota_treats_id_0_like_any_other_id():
    frames = list(range(10))
    gt = np.array(rows_for(17, 0, 0, frames, 0.0) + rows_for(17, 0, 1, frames, 5.0))
    pred = np.array(rows_for(17, 0, 1, frames, 0.0) + rows_for(17, 0, 2, frames, 5.0))
    renumbered = gt.copy()
    renumbered[:, 2] += 10
    with_zero = aicity_hota(gt, pred)['final']
    without_zero = aicity_hota(renumbered, pred)['final']
    assert with_zero == without_zero and with_zero['HOTA'] == pytest.approx(100.0, abs=1e-4)


def test_unknown_prediction_scene_is_refused():
    gt = np.array(rows_for(17, 0, 1, [0, 1], 0.0))
    with pytest.raises(SubmissionError, match='scenes the ground truth lacks: \\[99\\]'):
        aicity_hota(gt, np.array(rows_for(99, 0, 1, [0], 0.0)))


def test_submission_round_trip_and_format(tmp_path):
    rows = np.array(rows_for(17, 2, 4, [0, 1, 2], 1.234567))
    path = tmp_path / 'track1.txt'
    write_submission(path, rows)
    first = path.read_text().splitlines()[0]
    assert first == '17 2 4 0 1.23 1.00 0.90 0.50 0.60 1.80 0.30'
    np.testing.assert_allclose(read_submission(path), rows, atol=0.005)


def with_value(rows, column, value, row=0):
    rows = np.array(rows, dtype=np.float64)
    rows[row, column] = value
    return rows


ONE = rows_for(1, 0, 5, [0], 0)
TWO = rows_for(1, 0, 5, [0, 1], 0)


@pytest.mark.parametrize(
    'rows, message',
    [
        (
            rows_for(1, 0, 5, [0], 0) + rows_for(1, 3, 5, [1], 0),
            'bad.txt: row 1: object_id 5 is class_id 3 here but class_id 0 on row 0 in scene 1',
        ),
        (rows_for(1, 9, 5, [0], 0), 'bad.txt: row 0: unknown class_id 9; the class ids are 0 '),
        (rows_for(1, 0, 0, [0], 0), 'row 0: object_id 0: predicted object ids must be >= 1'),
        (
            rows_for(1, 0, 5, [0, 0], 0),
            'row 1: object_id 5 of class_id 0 appears twice in scene 1, frame 0 '
            '\\(also on row 0\\)',
        ),
        (with_value(TWO, 3, 2.5, row=1), 'row 1: frame_id 2.5 is not an integer'),
        (with_value(ONE, 2, 1e6 + 0.5), 'row 0: object_id 1e\\+06 is not an integer'),
        (with_value(ONE, 8, 0.0), 'row 0: length 0: sizes must be > 0 metres'),
        (with_value(ONE, 9, -1.5), 'row 0: height -1.5: sizes must be > 0 metres'),
        (with_value(ONE, 4, np.nan), 'row 0: x is nan, not a finite number'),
        (with_value(ONE, 7, 0.004), 'row 0: width 0.004 m would be written as 0.00'),
    ],
)
def test_submission_errors_before_writing(tmp_path, rows, message):
    path = tmp_path / 'bad.txt'
    with pytest.raises(SubmissionError, match=message):
        write_submission(path, np.array(rows))
    assert not path.exists()


def test_writer_keeps_large_ids_as_integers(tmp_path):
    path = tmp_path / 'track1.txt'
    write_submission(path, np.array(rows_for(17, 0, 1234567, [8999], 0.0)))
    assert path.read_text().startswith('17 0 1234567 8999 ')


GOOD = '17 0 1 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30'


def fields(**changes):
    """GOOD with some fields replaced, by name."""
    values = dict(zip(FIELDS, GOOD.split(' '), strict=True))
    values.update(changes)
    return ' '.join(values.values())


@pytest.mark.parametrize(
    'lines, message',
    [
        (
            [GOOD, '', GOOD.replace(' 0 1.00', '  1 1.00', 1)],
            'x.txt:3: 12 fields, expected 11 separated by single spaces \\(a double or trailing',
        ),
        ([GOOD, GOOD[:-5]], 'x.txt:2: 10 fields, expected 11 separated by single spaces$'),
        ([GOOD, fields(frame_id='3.5')], "x.txt:2: frame_id '3.5' is not an integer"),
        ([GOOD, fields(frame_id='3.0')], "x.txt:2: frame_id '3.0' is not an integer"),
        ([fields(scene_id='17.5')], "x.txt:1: scene_id '17.5' is not an integer"),
        ([fields(class_id='Person')], "x.txt:1: class_id 'Person' is not an integer"),
        ([fields(object_id='1e3')], "x.txt:1: object_id '1e3' is not an integer"),
        ([fields(x='1,5')], "x.txt:1: x '1,5' is not a number"),
        ([fields(y='nan')], 'x.txt:1: y is nan, not a finite number'),
        (['', '', fields(width='0.00')], 'x.txt:3: width 0: sizes must be > 0 metres'),
        ([fields(height='-1.80')], 'x.txt:1: height -1.8: sizes must be > 0 metres'),
        ([fields(class_id='7')], 'x.txt:1: unknown class_id 7'),
        ([GOOD, fields(object_id='0')], 'x.txt:2: object_id 0: predicted object ids must be >= 1'),
        (
            [GOOD, '', fields(frame_id='1', class_id='2')],
            'x.txt:3: object_id 1 is class_id 2 here but class_id 0 on line 1 in scene 17',
        ),
        (
            [GOOD, fields(frame_id='1'), '', GOOD],
            'x.txt:4: object_id 1 of class_id 0 appears twice in scene 17, frame 0 '
            '\\(also on line 1\\)',
        ),
    ],
)
def test_reader_names_the_line_and_the_value_as_written(tmp_path, lines, message):
    path = tmp_path / 'x.txt'
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(SubmissionError, match=message) as error:
        read_submission(path)
    assert error.value.path == str(path) and str(error.value).startswith(f'{path}:')


def test_ground_truth_may_hold_id_0_predictions_may_not(tmp_path):
    path = tmp_path / 'gt.txt'
    path.write_text(fields(object_id='0') + '\n')
    assert read_submission(path, ground_truth=True)[0, 2] == 0
    with pytest.raises(SubmissionError, match='gt.txt:1: object_id 0: predicted object ids'):
        read_submission(path)
    path.write_text(fields(object_id='-1') + '\n')
    with pytest.raises(SubmissionError, match='object_id -1: ground-truth object ids must be >= 0'):
        read_submission(path, ground_truth=True)


def test_reader_returns_the_line_numbers(tmp_path):
    path = tmp_path / 'x.txt'
    path.write_text('\n'.join(['', GOOD, '', '', fields(frame_id='1'), '']) + '\n')
    rows, lines = read_submission(path, return_lines=True)
    assert rows.shape == (2, 11) and lines.tolist() == [2, 5]


def test_empty_prediction_file_warns_and_scores_0(tmp_path):
    path = tmp_path / 'empty.txt'
    path.write_text('\n\n')
    with pytest.warns(SubmissionWarning, match='empty.txt: no rows: an empty prediction file'):
        rows = read_submission(path)
    assert rows.shape == (0, 11)
    result = aicity_hota(np.array(rows_for(17, 0, 1, [0, 1], 0.0)), rows)
    assert result['final']['HOTA'] == 0.0 and result['per_scene'][17]['weight'] == 2


def test_reader_refuses_missing_and_binary_files(tmp_path):
    with pytest.raises(SubmissionError, match='nothing.txt: no such file'):
        read_submission(tmp_path / 'nothing.txt')
    path = tmp_path / 'track1.zip'
    path.write_bytes(b'PK\x03\x04\xff\xfe\x00')
    with pytest.raises(SubmissionError, match='track1.zip: not UTF-8 text .* unpacked first'):
        read_submission(path)


def test_nvschema_and_frame_results_round_trip(tmp_path):
    boxes = np.array([[1.0, 2.0, 0.9, 0.5, 0.6, 1.8, 0.25]])
    frame = nvschema_frame(
        12,
        'bev-sensor-1',
        boxes,
        np.array([0.9]),
        ['Person'],
        np.array([41]),
        embeddings=np.array([[0.1, 0.2]]),
    )
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
        'bboxes_3d': np.zeros((2, 10)),
        'scores_3d': np.array([0.5, 0.2]),
        'labels_3d': np.array([0, 3]),
    }
    write_frame_results(tmp_path / 'f.json', 'tok', results)
    back = read_frame_results(tmp_path / 'f.json')
    assert back['token'] == 'tok' and back['bboxes_3d'].shape == (2, 10)
    json.loads((tmp_path / 'f.json').read_text())


@pytest.fixture(scope='module')
def h5_scene_gt(h5_scene):
    return load_ground_truth(h5_scene[0] / 'ground_truth.json')


def test_command_line_scores_ground_truth_against_itself(h5_scene, tmp_path, capsys):
    from tools.aicity_eval import main

    gt_text = tmp_path / 'gt.txt'
    json_path = h5_scene[0] / 'ground_truth.json'
    main(['convert-gt', str(json_path), '--scene-id', '17', '--out', str(gt_text)])
    rows = read_submission(gt_text, ground_truth=True)
    assert set(rows[:, 0]) == {17} and len(rows) == 6 * 12
    ids = {
        item['object id'] for items in json.loads(json_path.read_text()).values() for item in items
    }
    assert set(rows[:, 2].astype(int).tolist()) == ids  # convert-gt keeps the ids, 0 included
    predictions = rows.copy()
    predictions[:, 2] += 1  # a submission's ids start at 1
    track1 = tmp_path / 'track1.txt'
    write_submission(track1, predictions)
    main(
        [
            'score',
            '--ground-truth',
            str(gt_text),
            '--predictions',
            str(track1),
            '--out',
            str(tmp_path / 's.json'),
        ]
    )
    printed = capsys.readouterr().out
    assert 'final' in printed and '100.000' in printed
    summary = json.loads((tmp_path / 's.json').read_text())
    assert summary['final']['HOTA'] == pytest.approx(100, abs=1e-4)


def test_pallet_truck_has_the_2026_class_id_in_ground_truth_rows(tmp_path):
    """NVIDIA's 7-class spelling of PalletTruck reads and keeps its class id 6, not dropped."""
    from mmsparse4d.datasets.aicity import load_ground_truth
    from mmsparse4d.evaluation.writers import CLASS_IDS, ground_truth_rows

    path = tmp_path / 'ground_truth.json'
    item = {
        'object type': 'pallet_truck',
        'object id': 3,
        '3d location': [1, 2, 0.5],
        '3d bounding box scale': [1, 2, 1],
        '3d bounding box rotation': [0, 0, 0.3],
    }
    path.write_text(json.dumps({'0': [item]}))
    rows = ground_truth_rows(load_ground_truth(path), scene_id=4)
    assert CLASS_IDS['PalletTruck'] == 6
    assert rows.tolist() == [[4, 6, 3, 0, 1, 2, 0.5, 1, 2, 1, 0.3]]
