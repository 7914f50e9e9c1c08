"""score_scene on a real generated scene, with predictions made from its ground truth."""

import numpy as np
import pytest

from mmsparse4d.datasets.aicity import CLASSES, RawScene
from mmsparse4d.datasets.synthetic import write_synthetic_scene
from mmsparse4d.evaluation.scene_scores import SCENE_ID, score_scene, where_missed
from mmsparse4d.evaluation.writers.aicity_submission import (
    CLASS,
    ground_truth_rows,
    read_submission,
    write_submission,
)
from mmsparse4d.structures.track_ids import FIRST_TRACK_ID


@pytest.fixture(scope='module')
def scene_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('scene') / 'Warehouse_1000004'
    write_synthetic_scene(
        root, seed=1_000_004, num_cameras=2, num_objects=8, num_frames=4, width=320, height=180
    )
    return root


def write_predictions(scene_dir, out, drop_class=None):
    """The ground truth as a tracker's outputs: submission rows (ids from 1) and a
    ``*_tracks.npz`` with score 1 per box; ``drop_class`` is left out of both."""
    scene = RawScene(scene_dir)
    rows = ground_truth_rows(scene.ground_truth, SCENE_ID)
    arrays = {}
    for frame in range(scene.num_frames):
        objects = [o for o in scene.objects(frame) if o.class_name != drop_class]
        arrays[f'{frame}/bboxes_3d'] = np.array(
            [[*o.location, *o.scale, o.yaw, 0, 0, 0] for o in objects], np.float32
        ).reshape(-1, 10)
        arrays[f'{frame}/scores_3d'] = np.ones(len(objects), np.float32)
        arrays[f'{frame}/labels_3d'] = np.array([CLASSES.index(o.class_name) for o in objects])
    frames = scene.num_frames
    scene.close()
    if drop_class is not None:
        rows = rows[rows[:, CLASS] != CLASSES.index(drop_class)]
    rows[:, 2] += FIRST_TRACK_ID
    write_submission(out / 'submission.txt', rows)
    np.savez_compressed(out / 'tracks.npz', frames=frames, **arrays)
    return out / 'submission.txt', out / 'tracks.npz'


def test_the_ground_truth_scores_full_marks(scene_dir, tmp_path):
    scores = score_scene(scene_dir, *write_predictions(scene_dir, tmp_path))
    assert scores['HOTA'] == pytest.approx(100, abs=1e-6)
    assert scores['mAP'] == pytest.approx(1, abs=1e-9)
    assert scores['frames'] == 4 and scores['gt_rows'] == 4 * 8
    # The generator puts every class in a scene of at least six objects.
    assert set(scores['per_class']) == set(CLASSES)
    assert all(c['HOTA'] == pytest.approx(100, abs=1e-6) for c in scores['per_class'].values())


def test_a_class_never_predicted_counts_zero_in_its_row(scene_dir, tmp_path):
    scores = score_scene(scene_dir, *write_predictions(scene_dir, tmp_path, 'NovaCarter'))
    assert scores['per_class']['NovaCarter'] == {
        'HOTA': 0.0,
        'AP': 0.0,
        'gt_rows': scores['per_class']['NovaCarter']['gt_rows'],
    }
    # The challenge's mean skips the class without predictions; AP counts it as 0.
    assert scores['HOTA'] == pytest.approx(100, abs=1e-6)
    assert scores['mAP'] == pytest.approx(5 / 6, abs=1e-9)


def test_misses_are_split_by_cause(scene_dir, tmp_path):
    submission, _ = write_predictions(scene_dir, tmp_path, 'NovaCarter')
    rows = ground_truth_rows(RawScene(scene_dir).ground_truth, SCENE_ID)
    predictions = read_submission(submission)
    carter = rows[:, CLASS] == CLASSES.index('NovaCarter')
    missed = int(carter.sum())
    origin = np.array([5.0, -3.0, 0.0])
    cameras = np.arange(len(rows)) % 7  # 0 to 6 cameras
    # No anchor near anything: every row is far, the missed ones among them.
    far = where_missed(rows, predictions, np.array([[1e3, 1e3]]), origin, cameras)
    assert (far['rows'], far['missed'], far['confused']) == (len(rows), missed, 0)
    assert (far['far_rows'], far['far_missed']) == (len(rows), missed)
    assert sum(n for n, _ in far['by_cameras'].values()) == len(rows)
    assert far['by_cameras']['5+'] == [
        int((cameras >= 5).sum()),
        int((carter & (cameras >= 5)).sum()),
    ]
    # An anchor on every centre in the model's frame (world - origin): none is far.
    near = where_missed(rows, predictions, rows[:, 4:6] - origin[:2], origin, cameras)
    assert (near['far_rows'], near['far_missed']) == (0, 0)
    # The carters predicted with another class: found, but confused.
    relabelled = np.vstack([predictions, rows[carter]])
    relabelled[len(predictions) :, CLASS] = CLASSES.index('Person')
    relabelled[len(predictions) :, 2] += 1000  # their own track ids
    confused = where_missed(rows, relabelled, np.array([[1e3, 1e3]]), origin, cameras)
    assert (confused['missed'], confused['confused']) == (missed, missed)
