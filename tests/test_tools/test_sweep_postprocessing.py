"""tools/analysis_tools/sweep_postprocessing.py on a generated scene whose tracks are its
ground truth with defects the sweep's settings repair: a duplicate box per object and ids
that change half way; yaws turned away from the direction of travel; centres and sizes
with noise; or yaws and heights with noise."""

import re

import numpy as np
import pytest

from mmsparse4d.datasets.aicity import CLASSES, RawScene
from mmsparse4d.datasets.synthetic import write_synthetic_scene
from tests.conftest import run_repo_tool

FRAMES = 6


def _scene(work, frames):
    scene_dir = work / 'raw' / 'Warehouse_1000006'
    write_synthetic_scene(
        scene_dir,
        seed=1_000_006,
        num_cameras=2,
        num_objects=5,
        num_frames=frames,
        width=160,
        height=90,
    )
    return RawScene(scene_dir)


def _ground_truth_boxes(objects):
    """Boxes [M, 10] and labels [M] of a frame's ground-truth objects."""
    boxes = np.array([[*o.location, *o.scale, o.yaw, 0, 0, 0] for o in objects], np.float32)
    return boxes, np.array([CLASSES.index(o.class_name) for o in objects])


def _write_tracks(work, frames, tracks_of):
    """A generated scene of ``frames`` frames under ``work/raw`` and its ``out/*_tracks.npz``
    from ``tracks_of(frame, objects)`` -> boxes, scores, labels, track ids."""
    scene = _scene(work, frames)
    arrays = {'frames': np.array(frames)}
    for frame in range(frames):
        tracks = tracks_of(frame, scene.objects(frame))
        for key, value in zip(
            ('bboxes_3d', 'scores_3d', 'labels_3d', 'track_ids'), tracks, strict=True
        ):
            arrays[f'{frame}/{key}'] = value
    scene.close()
    (work / 'out').mkdir()
    np.savez(work / 'out' / 'Warehouse_1000006_tracks.npz', **arrays)


def _duplicated_and_switched(frame, objects):
    boxes, labels = _ground_truth_boxes(objects)
    # ids change at frame 3 (a new query took each object over) ...
    ids = np.array([o.object_id + (100 if frame >= 3 else 0) for o in objects]) + 1
    # ... and a weaker copy 5 cm off every box, with its own id
    copies = boxes.copy()
    copies[:, 0] += 0.05
    scores = np.r_[np.ones(len(boxes)), np.full(len(boxes), 0.5)].astype(np.float32)
    return np.concatenate([boxes, copies]), scores, np.r_[labels, labels], np.r_[ids, ids + 1000]


def _turned(frame, objects):
    boxes, labels = _ground_truth_boxes(objects)
    boxes[:, 6] += 0.6
    ids = np.array([o.object_id + 1 for o in objects])
    return boxes, np.ones(len(boxes), np.float32), labels, ids


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    work = tmp_path_factory.mktemp('sweep')
    _write_tracks(work, FRAMES, _duplicated_and_switched)
    return work


def _noisy(frame, objects):
    """The ground truth with 15 cm of noise on every centre and 10% on every size."""
    boxes, labels = _ground_truth_boxes(objects)
    rng = np.random.default_rng(frame)
    boxes[:, :3] += rng.normal(0, 0.15, (len(boxes), 3))
    boxes[:, 3:6] *= 1 + rng.normal(0, 0.1, (len(boxes), 3))
    ids = np.array([o.object_id + 1 for o in objects])
    return boxes, np.ones(len(boxes), np.float32), labels, ids


def table_rows(stdout: str) -> dict:
    """(duplicate radius, stitching), for heading rows the heading window, for smoothing rows
    ('smoothing', centre window, size window[, yaw window, floor]) -> the row's HOTA, DetA,
    AssA, HOTA every class and track ids."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if len(cells) == 12 and re.fullmatch(r'[0-9.]+', cells[7]):
            if cells[5:7] != ['as tracked', 'as tracked']:
                key = ('smoothing', *cells[3:7])
            elif cells[3:5] != ['as tracked', 'as tracked']:
                key = ('smoothing', cells[3], cells[4])
            elif cells[2] != 'as tracked':
                key = cells[2]
            else:
                key = (cells[0], cells[1])
            rows[key] = [float(c) for c in cells[7:]]
    return rows


def sweep(work, *arguments):
    """The tool on ``work`` with one duplicate radius (0.3) and one stitching (1:5)."""
    return run_repo_tool(
        'analysis_tools/sweep_postprocessing.py',
        work,
        '--duplicate-radius',
        '0.3',
        '--stitching',
        '1:5',
        *arguments,
    )


def test_suppression_and_stitching_repair_what_they_should(work_dir):
    done = sweep(work_dir)
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    as_tracked = rows[('as tracked', 'as tracked')]
    suppressed = rows[('0.3', 'as tracked')]
    both = rows[('0.3', '1 : 5')]
    assert as_tracked[4] == 20  # 5 objects x 2 id spans x (box + copy)
    assert suppressed[4] == 10 and suppressed[0] > as_tracked[0]  # the copies are gone
    assert both[4] == 5  # one id per object
    assert both[0] > suppressed[0] and both[0] == pytest.approx(100, abs=1e-6)


def test_a_heading_window_turns_moving_tracks_to_their_recent_direction(tmp_path):
    """Tracks with the ground truth's centres and ids but every yaw turned by 0.6 rad: the
    heading rows give the moving tracks the direction of their last frames (the
    generator's objects face the way they travel), which scores higher."""
    _write_tracks(tmp_path, 12, _turned)
    done = sweep(tmp_path, '--heading-window', '3', '6', '--motion-heading', '6:0.05')
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    as_tracked = rows[('as tracked', 'as tracked')]
    assert rows['3 of 6'][0] > as_tracked[0] and rows['6 of 6'][0] > as_tracked[0]
    assert rows['3 of 6'][4] == rows['6 of 6'][4] == as_tracked[4] == 5  # ids untouched


def test_smoothing_averages_the_noise_of_centres_and_sizes(tmp_path):
    """Tracks with the ground truth's ids and noisy boxes: a local line through the centres
    and the median size each score higher, both together highest; ids untouched."""
    _write_tracks(tmp_path, 30, _noisy)
    done = sweep(tmp_path, '--centre-window', '5', '--size-window', 'all', '10')
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    as_tracked = rows[('as tracked', 'as tracked')]
    centres, sizes = (
        rows[('smoothing', '5', 'as tracked')],
        rows[('smoothing', 'as tracked', 'all')],
    )
    both = rows[('smoothing', '5', 'all')]
    assert centres[0] > as_tracked[0] + 5 and sizes[0] > as_tracked[0]
    assert both[0] > max(centres[0], sizes[0])
    assert rows[('smoothing', '5', '10')][0] > centres[0]
    assert both[4] == as_tracked[4] == 5


def _yaw_and_height_noise(frame, objects):
    """The ground truth with 0.3 rad of noise on every yaw and 5 cm on every centre's z."""
    boxes, labels = _ground_truth_boxes(objects)
    rng = np.random.default_rng(100 + frame)
    boxes[:, 6] += rng.normal(0, 0.3, len(boxes))
    boxes[:, 2] += rng.normal(0, 0.05, len(boxes))
    ids = np.array([o.object_id + 1 for o in objects])
    return boxes, np.ones(len(boxes), np.float32), labels, ids


def test_yaw_window_and_floor_undo_the_noise_of_yaws_and_heights(tmp_path):
    """Tracks with the ground truth's ids and centres (on the generator's floor, z = 0) but
    noisy yaws and heights: the yaws' axial mean and the floor each score higher, together
    highest; a floor row of its own; ids untouched."""
    _write_tracks(tmp_path, 30, _yaw_and_height_noise)
    done = sweep(tmp_path, '--yaw-window', '5', '--floor-height', '0')
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    as_tracked = rows[('as tracked', 'as tracked')]
    floor = rows[('smoothing', 'as tracked', 'as tracked', 'as tracked', '0')]
    both = rows[('smoothing', 'as tracked', 'as tracked', '5', '0')]
    assert floor[0] > as_tracked[0] + 5 and both[0] > floor[0]
    assert both[4] == as_tracked[4] == 5
    done = sweep(tmp_path, '--yaw-window', '5')
    yaws = table_rows(done.stdout)[('smoothing', 'as tracked', 'as tracked', '5', 'as tracked')]
    assert yaws[0] > as_tracked[0] and both[0] > yaws[0]


def test_bad_smoothing_windows_are_refused(work_dir):
    done = run_repo_tool('analysis_tools/sweep_postprocessing.py', work_dir, '--centre-window', '0')
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert '--centre-window, --yaw-window: frames on either side must be >= 1' in done.stderr
    done = run_repo_tool('analysis_tools/sweep_postprocessing.py', work_dir, '--size-window', 'x')
    assert done.returncode == 2 and "'x' is not all, none or frames >= 0" in done.stderr


def test_bad_heading_windows_are_refused(work_dir):
    done = run_repo_tool(
        'analysis_tools/sweep_postprocessing.py', work_dir, '--heading-window', '30'
    )
    assert done.returncode == 2
    assert 'heading_window=30' in done.stderr and 'Traceback' not in done.stderr


def test_a_folder_without_tracks_is_refused(tmp_path):
    done = run_repo_tool('analysis_tools/sweep_postprocessing.py', tmp_path)
    assert done.returncode == 2
    message = 'no out/*_tracks.npz: not an evaluate_synthetic.py work dir'
    assert done.stderr.strip() == f'sweep_postprocessing: {tmp_path}: {message}'
