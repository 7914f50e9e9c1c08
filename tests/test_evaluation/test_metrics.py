"""The mmengine metrics over data samples shaped like the model's outputs."""

import json

import numpy as np
import pytest
import torch
from mmdet3d.structures import Det3DDataSample
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmsparse4d.datasets.aicity import CLASSES, RawScene
from mmsparse4d.evaluation.functional import aicity_hota
from mmsparse4d.evaluation.writers import ground_truth_rows
from mmsparse4d.structures.track_ids import FIRST_TRACK_ID

ORIGIN = np.array([2.0, -1.0, 0.0])


def samples_from_scene(scene, noise, rng, drop=0.0, id_offset=0):
    out = []
    for frame in range(scene.num_frames):
        objects = scene.objects(frame)
        boxes = (
            np.array([[*o.location, *o.scale, o.yaw] for o in objects]) - np.r_[ORIGIN, 0, 0, 0, 0]
        )
        labels = np.array([CLASSES.index(o.class_name) for o in objects])
        ids = np.array([o.object_id for o in objects])
        keep = rng.random(len(objects)) >= drop
        meta = dict(token=f'{scene.name}__{frame}', scene_name=scene.name, frame_idx=frame)
        sample = Det3DDataSample(metainfo=dict(meta, origin=ORIGIN))
        gt = InstanceData()
        gt.bboxes_3d = torch.tensor(boxes, dtype=torch.float32)
        gt.labels_3d = torch.tensor(labels)
        gt.instance_ids = torch.tensor(ids)
        pred = InstanceData()
        noisy = (
            boxes[keep] + np.c_[rng.normal(0, noise, (keep.sum(), 3)), np.zeros((keep.sum(), 4))]
        )
        # The model outputs world coordinates; the ground truth is in the group frame.
        world = noisy + np.r_[ORIGIN, 0, 0, 0, 0]
        pred.bboxes_3d = torch.tensor(np.c_[world, np.zeros((keep.sum(), 3))], dtype=torch.float32)
        pred.labels_3d = torch.tensor(labels[keep])
        pred.scores_3d = torch.tensor(rng.uniform(0.3, 1.0, keep.sum()))
        pred.track_ids = torch.tensor(ids[keep] + id_offset + FIRST_TRACK_ID)
        sample.gt_instances_3d, sample.pred_instances_3d = gt, pred
        out.append(sample)
    return out


def evaluate(metric, samples):
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        evaluator = Evaluator([metric])
    evaluator.dataset_meta = dict(classes=CLASSES)
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def test_hota_metric_matches_the_function_and_writes_json(h5_scene, tmp_path):
    scene = RawScene(h5_scene[0])
    samples = samples_from_scene(scene, noise=0.05, rng=np.random.default_rng(0), drop=0.1)
    metrics = evaluate(dict(type='AICityHOTAMetric', outfile_prefix=str(tmp_path / 'run')), samples)
    assert set(metrics) == {'aicity/HOTA', 'aicity/DetA', 'aicity/AssA', 'aicity/LocA'}
    assert 50 < metrics['aicity/HOTA'] < 100
    written = json.loads((tmp_path / 'run_hota.json').read_text())
    assert written['final']['HOTA'] == pytest.approx(metrics['aicity/HOTA'])
    assert set(written['per_scene']) == {scene.name}
    # Predicted instance ids from 0, as the model numbers them (instance 0 is track 1).
    perfect = samples_from_scene(scene, noise=0.0, rng=np.random.default_rng(1), id_offset=0)
    metrics = evaluate(dict(type='AICityHOTAMetric', outfile_prefix=str(tmp_path / 'p')), perfect)
    assert metrics['aicity/HOTA'] == pytest.approx(100, abs=1e-3)
    # The same number as scoring the ground truth rows directly.
    rows = ground_truth_rows(scene.ground_truth, 0)
    predictions = rows.copy()
    predictions[:, 2] = rows[:, 2] + FIRST_TRACK_ID
    assert aicity_hota(rows, predictions)['final']['HOTA'] == pytest.approx(
        metrics['aicity/HOTA'], abs=1e-3
    )


def test_hota_metric_numbers_tracks_as_the_trackers_and_keeps_ground_truth_ids():
    from mmsparse4d.evaluation.metrics import AICityHOTAMetric

    boxes = np.array([[0.0, 0.0, 0.9, 0.5, 0.6, 1.8, 0.0]])
    one = (boxes, np.array([0]), np.array([0]))  # boxes, labels, ids
    # The model reports its first track as FIRST_TRACK_ID, as every tracker.
    tracked = (boxes, np.array([0]), np.array([FIRST_TRACK_ID]))
    result = {
        'scene': 'Warehouse_000',
        'frame': 4,
        'scores': np.ones(1),
        'gt': one,
        'pred': tracked,
    }
    metric = AICityHOTAMetric()
    scene_ids = {'Warehouse_000': 0}
    assert metric._rows([result], 'gt', scene_ids)[0, 2] == 0
    assert metric._rows([result], 'pred', scene_ids)[0, 2] == FIRST_TRACK_ID


def test_hota_metric_smooths_tracks_as_infer_writes_them(h5_scene, tmp_path):
    """With ``track_smoothing`` the metric scores what ``smooth_tracks`` makes of the
    predicted rows, which for noisy centres is higher than the boxes as tracked."""
    from mmsparse4d.evaluation.functional.track_smoothing import smooth_tracks
    from mmsparse4d.evaluation.metrics import AICityHOTAMetric

    scene = RawScene(h5_scene[0])
    samples = samples_from_scene(scene, noise=0.1, rng=np.random.default_rng(3))
    smoothing = dict(centre_window=3, constant_size=True)
    raw = evaluate(dict(type='AICityHOTAMetric', outfile_prefix=str(tmp_path / 'r')), samples)
    smoothed = evaluate(
        dict(
            type='AICityHOTAMetric', outfile_prefix=str(tmp_path / 's'), track_smoothing=smoothing
        ),
        samples,
    )
    assert smoothed['aicity/HOTA'] > raw['aicity/HOTA']
    rows = ground_truth_rows(scene.ground_truth, 0)
    metric = AICityHOTAMetric()
    for sample in samples:
        metric.process(None, [sample.to_dict()])
    predictions = smooth_tracks(metric._rows(metric.results, 'pred', {scene.name: 0}), **smoothing)
    assert aicity_hota(rows, predictions)['final']['HOTA'] == pytest.approx(
        smoothed['aicity/HOTA'], abs=1e-3
    )
    with pytest.raises(ValueError, match='AICityHOTAMetric: track_smoothing: windows are frames'):
        AICityHOTAMetric(track_smoothing=dict(centre_window=-2))


def test_detection_metric(h5_scene, tmp_path):
    scene = RawScene(h5_scene[0])
    samples = samples_from_scene(scene, noise=0.3, rng=np.random.default_rng(2), drop=0.2)
    metrics = evaluate(dict(type='DetectionAPMetric', outfile_prefix=str(tmp_path / 'd')), samples)
    assert 0.3 < metrics['det/mAP'] < 1.0
    written = json.loads((tmp_path / 'd_ap.json').read_text())
    assert written['mAP'] == pytest.approx(metrics['det/mAP'])
    assert set(written['per_class']) == set(CLASSES)


def test_unknown_class_name_is_refused():
    from mmsparse4d.evaluation.metrics import AICityHOTAMetric

    with pytest.raises(ValueError, match="unknown classes \\['Cat'\\]"):
        AICityHOTAMetric(class_names=('Person', 'Cat'))


def test_empty_predictions_are_scored(h5_scene, tmp_path):
    scene = RawScene(h5_scene[0])
    samples = samples_from_scene(scene, noise=0.0, rng=np.random.default_rng(0), drop=1.0)
    hota = evaluate(dict(type='AICityHOTAMetric', outfile_prefix=str(tmp_path / 'e')), samples)
    assert hota['aicity/HOTA'] == 0.0
    ap = evaluate(dict(type='DetectionAPMetric', outfile_prefix=str(tmp_path / 'e')), samples)
    assert ap['det/mAP'] == 0.0


def test_a_track_that_changes_class_is_scored_with_its_main_class():
    from mmsparse4d.evaluation.writers import check_rows, one_class_per_track

    # Track 5 is class 0 in two confident rows and class 3 in one weak row.
    rows = np.array(
        [
            [0, 0, 5, 0, 0, 0, 0, 1, 1, 1, 0],
            [0, 3, 5, 1, 0, 0, 0, 1, 1, 1, 0],
            [0, 0, 5, 2, 0, 0, 0, 1, 1, 1, 0],
            [0, 2, 6, 0, 3, 3, 0, 1, 1, 1, 0],
        ],
        dtype=np.float64,
    )
    fixed, mixed = one_class_per_track(rows, np.array([0.9, 0.3, 0.8, 0.5]))
    assert mixed == 1
    assert fixed[:, 1].tolist() == [0, 0, 0, 2]
    check_rows(fixed)
    with pytest.raises(ValueError, match='object_id 5 is class_id 3 here but class_id 0 on row 0'):
        check_rows(rows)


def test_hota_metric_submits_the_boxes_continuing_a_track_as_infer_does(h5_scene):
    """With the decoder's ``track_stitching`` and its ``continue_score``, a box below the
    threshold that carries a track id is submitted; untracked weak boxes are not."""
    from mmsparse4d.evaluation.metrics import AICityHOTAMetric

    scene = RawScene(h5_scene[0])
    (sample,) = samples_from_scene(scene, noise=0.0, rng=np.random.default_rng(5))[:1]
    pred = sample.pred_instances_3d
    count = len(pred.scores_3d)
    assert count >= 3
    scores = pred.scores_3d.clone()
    scores[:2] = 0.15  # the first continues its track, the second has none
    pred.scores_3d = scores
    track_ids = pred.track_ids.clone()
    track_ids[1] = FIRST_TRACK_ID - 1
    pred.track_ids = track_ids
    stitching = dict(radius=1.0, min_score=0.2, continue_score=0.1)
    submitted = {}
    for name, settings in (('plain', None), ('continuing', stitching)):
        metric = AICityHOTAMetric(track_stitching=settings)
        metric.process(None, [sample.to_dict()])
        submitted[name] = metric.results[0]['pred'][2].tolist()
    assert submitted['plain'] == track_ids[2:].tolist()
    assert submitted['continuing'] == [int(track_ids[0]), *track_ids[2:].tolist()]
    with pytest.raises(ValueError, match='AICityHOTAMetric: track_stitching: .*continue_score'):
        AICityHOTAMetric(track_stitching=dict(min_score=0.2, continue_score=0.3))
