"""The synthetic generator's conventions, proven on its own output files."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mmsparse4d.datasets.aicity import RawScene, box_corners
from mmsparse4d.datasets.synthetic import CLASS_SPECS, make_scene_model, write_synthetic_scene
from tests.conftest import REPO_ROOT, run_repo_tool


def visible_entries(scene):
    for frame in range(scene.num_frames):
        for obj in scene.objects(frame):
            for camera, box in obj.visible_boxes.items():
                yield frame, obj, camera, box


def projected_bounds(calibration, corners):
    uv, depth = calibration.project(corners)
    assert (depth > 0).all()
    low = np.maximum(uv.min(axis=0), 0)
    high = np.minimum(uv.max(axis=0), [calibration.width - 1, calibration.height - 1])
    return low, high


def test_projected_corners_bound_the_visible_boxes(h5_scene):
    scene = RawScene(h5_scene[0])
    count = 0
    for _, obj, camera, box in visible_entries(scene):
        low, high = projected_bounds(scene.calibration[camera], obj.corners())
        assert (box[:2] >= low - 1).all() and (box[2:] <= high + 1).all(), (obj, camera)
        count += 1
    assert count > 50


def test_yaw_sign_is_the_heading_and_matters(h5_scene):
    scene = RawScene(h5_scene[0])
    for object_id in range(6):
        track = [next(o for o in scene.objects(f) if o.object_id == object_id) for f in range(12)]
        for now, later in zip(track, track[1:], strict=False):
            step = later.location[:2] - now.location[:2]
            heading = np.arctan2(step[1], step[0])
            # On a curve the chord between frames points along the mean of the two headings.
            mean_yaw = np.angle(np.exp(1j * now.yaw) + np.exp(1j * later.yaw))
            assert abs(np.angle(np.exp(1j * (heading - mean_yaw)))) < 0.05
    # With the opposite sign the corners miss the visible boxes of elongated objects.
    misses = 0
    for _, obj, camera, box in visible_entries(scene):
        if abs(obj.scale[0] - obj.scale[1]) < 0.5 or abs(np.sin(2 * obj.yaw)) < 0.3:
            continue
        flipped = box_corners(obj.location, obj.scale, -obj.yaw)
        low, high = projected_bounds(scene.calibration[camera], flipped)
        misses += not ((box[:2] >= low - 1).all() and (box[2:] <= high + 1).all())
    assert misses > 0


def test_depth_agrees_with_the_boxes_distances(h5_scene):
    scene = RawScene(h5_scene[0])
    checked = 0
    for frame, obj, camera, box in visible_entries(scene):
        full = obj.full_boxes[camera]
        if not np.array_equal(box, full) or (box[2:] - box[:2]).min() < 6:
            continue  # unoccluded objects of some size only
        _, corner_depths = scene.calibration[camera].project(obj.corners())
        x0, y0, x1, y1 = box.astype(int)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        centre = scene.depth(camera, frame)[cy - 1 : cy + 2, cx - 1 : cx + 2]
        assert corner_depths.min() - 0.01 <= np.median(centre) <= corner_depths.max() + 0.01
        checked += 1
    assert checked > 10


def test_scene_is_reproducible_and_well_formed(h5_scene, tmp_path):
    path, model = h5_scene
    again = make_scene_model(7, num_cameras=4, num_objects=6, num_frames=12, width=320, height=180)
    for a, b in zip(model.objects, again.objects, strict=True):
        assert a.class_name == b.class_name
        np.testing.assert_array_equal(a.path, b.path)
    assert 4 <= len(model.cameras) and len({c.center[2] for c in model.cameras}) == 4
    ground_truth = json.loads((path / 'ground_truth.json').read_text())
    classes = {obj['object type'] for objects in ground_truth.values() for obj in objects}
    assert classes <= set(CLASS_SPECS)
    for objects in ground_truth.values():
        for obj in objects:
            scale = np.array(obj['3d bounding box scale'])
            expected = np.array(CLASS_SPECS[obj['object type']]['scale'])
            assert np.all(np.abs(scale / expected - 1) < 0.09)
            assert obj['3d location'][2] == pytest.approx(scale[2] / 2, abs=1e-3)


def test_racks_occlude(h5_scene):
    scene = RawScene(h5_scene[0])
    clipped = sum(
        not np.array_equal(box, obj.full_boxes[camera])
        for _, obj, camera, box in visible_entries(scene)
    )
    assert clipped > 0


def test_existing_output_folder_is_refused(tmp_path):
    (tmp_path / 'scene').mkdir()
    (tmp_path / 'scene' / 'old.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='not empty'):
        write_synthetic_scene(tmp_path / 'scene', seed=0, num_frames=1)


def test_every_class_appears_when_there_are_enough_objects():
    for seed in range(5):
        scene = make_scene_model(seed, num_cameras=1, num_objects=len(CLASS_SPECS))
        assert {obj.class_name for obj in scene.objects} == set(CLASS_SPECS)


def test_a_layout_with_room_only_for_tight_loops_still_gives_every_object_a_path():
    # Seed 768088036 (a fresh test seed: 6 cameras, 25 objects) leaves one large object no
    # room for a loop of 1 m radius between its racks; it gets a tighter loop, clear of the
    # racks and inside the floor, instead of failing the scene.
    scene = make_scene_model(768088036, num_cameras=6, num_objects=25, width=480, height=270)
    assert len(scene.objects) == 25
    half = np.array(scene.floor_size) / 2
    for obj in scene.objects:
        clearance = float(obj.scale[:2].max()) / 2
        assert (np.abs(obj.path) < half - clearance - 1).all()
        for rack in scene.racks:
            assert not rack.footprint_contains(obj.path, margin=clearance + 0.3).any()


def test_objects_wear_their_class_accent_on_top():
    # One upright Forklift in front of a camera: the top of its image is the accent colour,
    # the middle its body colour (both lit, so compare hues, not values).
    from mmsparse4d.datasets.synthetic import Box, CameraRenderer, look_at_camera

    spec = CLASS_SPECS['Forklift']
    camera = look_at_camera(
        'Camera', np.array([6.0, 0, 1.1]), np.array([0, 0, 1.1]), 60, 64, 64, 30
    )
    scene = make_scene_model(0, num_cameras=1, num_objects=1, floor_size=(30.0, 30.0))
    scene = type(scene)(scene.floor_size, [], [camera], [], 30.0, 1)
    box = Box(
        np.array([0, 0, 1.1]),
        np.array([2.6, 1.2, 2.2]),
        0.0,
        np.array(spec['body']),
        np.array(spec['accent']),
        spec['accent_top'],
    )
    rgb, _, pixels = CameraRenderer(scene, camera, texture_seed=0).render([box])
    x0, y0, x1, y1 = pixels[0].visible_box
    top = rgb[y0 + 1, (x0 + x1) // 2].astype(float)
    middle = rgb[(y0 + y1) // 2, (x0 + x1) // 2].astype(float)
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    assert unit(top) @ unit(np.array(spec['accent'])) > 0.99
    assert unit(middle) @ unit(np.array(spec['body'])) > 0.99


@pytest.mark.parametrize(
    'arguments, message',
    [
        (['--frames', '0'], '--frames 0: must be at least 1'),
        (['--objects', '-1'], '--objects -1: must be at least 1'),
        (['--cameras', '0'], '--cameras 0: must be in [1, 99]'),
        (['--cameras', '100'], '--cameras 100: must be in [1, 99]'),
        (['--size', '0', '540'], '--size 0 540: width and height must be at least 1'),
        (['--size', '33', '20', '--rgb-format', 'mp4'], '--size 33 20: --rgb-format mp4 needs'),
        (['--fps', '0'], '--fps 0.0: must be a positive number'),
        (['--fps', 'nan'], '--fps nan: must be a positive number'),
        (['--workers', '0'], '--workers 0: must be at least 1'),
    ],
)
def test_make_synthetic_refuses_bad_arguments_before_writing(tmp_path, arguments, message):
    # --frames 0 used to write a scene that its own reader refused.
    out = tmp_path / 'scene'
    done = run_repo_tool('make_synthetic.py', out, '--seed', '0', *arguments)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f'make_synthetic: {message}')
    assert not out.exists()


def test_make_synthetic_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / 'scene').mkdir()
    (tmp_path / 'scene' / 'old.txt').write_text('keep me')
    done = run_repo_tool('make_synthetic.py', tmp_path / 'scene', '--seed', '0')
    assert done.returncode == 2
    assert done.stderr == (
        f'make_synthetic: {tmp_path / "scene"}: not an empty folder; choose a new folder for '
        'the scene\n'
    )
    assert [p.name for p in (tmp_path / 'scene').iterdir()] == ['old.txt']


@pytest.mark.parametrize('rgb_format', ['h5', 'mp4'])
def test_smallest_scene_is_read_back(tmp_path, rgb_format):
    out = tmp_path / 'scene'
    smallest = ['--frames', '1', '--cameras', '1', '--objects', '1', '--size', '2', '2']
    done = run_repo_tool(
        'make_synthetic.py',
        out,
        '--seed',
        '3',
        '--rgb-format',
        rgb_format,
        '--workers',
        '1',
        *smallest,
    )
    assert done.returncode == 0, done.stderr
    scene = RawScene(out)
    assert scene.cameras == ['Camera'] and scene.num_frames == 1
    assert scene.rgb('Camera', 0).shape == (2, 2, 3) and scene.depth('Camera', 0).shape == (2, 2)
    assert [o.object_id for o in scene.objects(0)] == [0]


def test_every_part_lies_inside_its_ground_truth_box():
    from mmsparse4d.datasets.synthetic.object_shapes import PARTS

    assert set(PARTS) == set(CLASS_SPECS)
    for name, parts in PARTS.items():
        for centre, size, tone in parts:
            low = np.asarray(centre) - np.asarray(size) / 2
            high = np.asarray(centre) + np.asarray(size) / 2
            assert (low >= -0.5 - 1e-9).all() and (high <= 0.5 + 1e-9).all(), (name, centre)
            assert tone in ('body', 'accent', 'dark'), (name, tone)


def render_side_on(class_name, yaw, shapes):
    """One object seen from its side (the camera on the world y axis) with ``shapes``."""
    from mmsparse4d.datasets.synthetic import Box, CameraRenderer, look_at_camera
    from mmsparse4d.datasets.synthetic.object_shapes import PARTS

    spec = CLASS_SPECS[class_name]
    scale = np.array(spec['scale'])
    centre = np.array([0, 0, scale[2] / 2])
    distance = 2.5 * scale.max() + 1  # the object fills about half the image
    camera = look_at_camera('Camera', np.array([0, -distance, 1.2]), centre, 60, 96, 64, 30)
    scene = make_scene_model(0, num_cameras=1, num_objects=1, floor_size=(30.0, 30.0))
    scene = type(scene)(scene.floor_size, [], [camera], [], 30.0, 1)
    parts = PARTS[class_name] if shapes == 'parts' else None
    body, accent = np.array([0.5, 0.5, 0.9]), np.array(spec['accent'])
    box = Box(centre, scale, yaw, body, accent, spec['accent_top'], parts)
    rgb, _, pixels = CameraRenderer(scene, camera, texture_seed=0).render([box])
    return rgb, pixels[0]


@pytest.mark.parametrize('class_name', ['Forklift', 'NovaCarter', 'AgilityDigit'])
def test_parts_show_which_way_an_object_faces(class_name):
    """A box looks the same turned by half a turn; a forklift of parts (mast and forks at the
    front), a robot with its sensor at the front, a Digit with its legs set back do not."""
    boxes = [render_side_on(class_name, yaw, 'boxes')[0] for yaw in (0.0, np.pi)]
    np.testing.assert_array_equal(*boxes)
    parts = [render_side_on(class_name, yaw, 'parts')[0].astype(int) for yaw in (0.0, np.pi)]
    differs = np.abs(parts[0] - parts[1]).max(axis=-1) > 30
    assert differs.mean() > 0.005, class_name


def test_parts_stay_inside_the_projected_box_and_keep_the_ground_truth(tmp_path):
    small = dict(num_cameras=3, num_objects=8, num_frames=3, width=160, height=96)
    write_synthetic_scene(tmp_path / 'boxes', seed=11, workers=1, **small)
    write_synthetic_scene(tmp_path / 'parts', seed=11, workers=1, shapes='parts', **small)
    with_boxes, with_parts = RawScene(tmp_path / 'boxes'), RawScene(tmp_path / 'parts')
    for frame in range(3):
        for a, b in zip(with_boxes.objects(frame), with_parts.objects(frame), strict=True):
            assert a.class_name == b.class_name and a.object_id == b.object_id
            np.testing.assert_array_equal(a.location, b.location)
            np.testing.assert_array_equal(a.scale, b.scale)
            assert a.yaw == b.yaw
            for camera, box in b.visible_boxes.items():
                low, high = projected_bounds(with_parts.calibration[camera], b.corners())
                assert (box[:2] >= low - 1).all() and (box[2:] <= high + 1).all()
    rgb_boxes = with_boxes.rgb(with_boxes.cameras[0], 0)
    assert not np.array_equal(rgb_boxes, with_parts.rgb(with_parts.cameras[0], 0))
    with_boxes.close()
    with_parts.close()


def test_cameras_render_in_forked_processes_after_the_parent_used_opencv_threads(tmp_path):
    # A forked renderer that resized OpenCV's thread pool after the parent had used it
    # deadlocked (a training pipeline in the same process, then a scene). A subprocess
    # with a time limit, so that a regression fails instead of hanging the suite.
    script = f"""
import cv2, numpy as np
from mmsparse4d.datasets.synthetic import write_synthetic_scene
cv2.setNumThreads(2)
image = np.random.default_rng(0).integers(0, 255, (2000, 2000, 3), dtype=np.uint8)
for _ in range(3):
    cv2.resize(image, (1500, 1500))  # runs on OpenCV's pool of threads
write_synthetic_scene({str(tmp_path / 'scene')!r}, seed=1, num_cameras=2, num_frames=2,
                      width=96, height=54, workers=2)
assert cv2.getNumThreads() == 2, cv2.getNumThreads()  # the caller's setting is kept
print('rendered')
"""
    result = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert result.returncode == 0 and 'rendered' in result.stdout, result.stderr[-2000:]
