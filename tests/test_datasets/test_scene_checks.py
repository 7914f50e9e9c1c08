"""A user's scene is checked before any output: frame counts, cut files, depth, grouping.

Each test damages a copy of a generated scene the way a copy, an export or a hand edit does,
then runs the real converter (in process through the tool's entry point, and once as a
subprocess) and asserts one clear line, exit status 2 and no output written.
"""

import json
import shutil
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest

from mmsparse4d.datasets.aicity import FrameReadError, GroundTruthError, RawScene
from mmsparse4d.datasets.converters.camera_groups import (
    camera_footprint,
    cameras_origin,
    create_camera_groups,
)
from mmsparse4d.datasets.converters.create_data import create_data
from mmsparse4d.utils.input_error import InputError, run_tool
from tests.conftest import REPO_ROOT
from tools.create_data import main as create_data_main


@pytest.fixture
def h5_copy(h5_scene, tmp_path):
    path = tmp_path / 'raw' / h5_scene[0].name
    shutil.copytree(h5_scene[0], path)
    return path


@pytest.fixture
def mp4_copy(mp4_scene, tmp_path):
    path = tmp_path / 'raw' / mp4_scene[0].name
    shutil.copytree(mp4_scene[0], path)
    return path


def convert(scene, tmp_path, capsys, *extra):
    """tools/create_data.py on ``scene`` through its entry point: (exit status, stderr)."""
    out = tmp_path / 'ovpkl'
    argv = [str(scene), '--out', str(out), '--anchors', '10', *extra]
    try:
        run_tool('create_data', create_data_main, argv)
        status = 0
    except SystemExit as error:
        status = error.code
    return status, capsys.readouterr().err, out


def assert_refused(status, err, out, *fragments):
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1, err
    assert lines[0].startswith('create_data: ') and 'Traceback' not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out.exists(), 'nothing may be written for a refused scene'


def test_a_cut_mp4_is_refused(mp4_copy, tmp_path, capsys):
    video = mp4_copy / 'videos' / 'Camera_01.mp4'
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    status, err, out = convert(mp4_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'Camera_01.mp4')


def test_a_video_shorter_than_the_ground_truth_is_refused(h5_copy, tmp_path, capsys):
    path = h5_copy / 'ground_truth.json'
    truth = json.loads(path.read_text())
    truth['20'] = truth['11']  # 12 frames of video, ground truth up to frame 20
    path.write_text(json.dumps(truth))
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'ground_truth.json', 'frame 20', 'shorter')
    with pytest.raises(GroundTruthError):
        RawScene(h5_copy).check()


def test_a_camera_with_fewer_frames_is_refused(h5_copy, tmp_path, capsys):
    with h5py.File(h5_copy / 'Camera_02.h5', 'a') as file:
        del file['rgb/rgb_00011.jpg']
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'Camera_02.h5', '11 frames', '12')


def test_a_missing_or_undecodable_depth_frame_is_refused(h5_copy, tmp_path, capsys):
    depth_file = h5_copy / 'depth_maps' / 'Camera.h5'
    key = 'distance_to_image_plane_00004.png'
    with h5py.File(depth_file, 'a') as file:
        depth = file[key][()]
        del file[key]
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'depth_maps/Camera.h5', key)
    with h5py.File(depth_file, 'a') as file:
        noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)
        file.create_dataset(key, data=noise)
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'depth_maps/Camera.h5', key, 'not a PNG')
    png = np.frombuffer(cv2.imencode('.png', depth)[1].tobytes(), np.uint8)
    with h5py.File(depth_file, 'a') as file:  # a PNG cut short
        del file[key]
        file.create_dataset(key, data=png[: len(png) // 2])
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, key, 'cut')
    with h5py.File(depth_file, 'a') as file:  # the whole PNG reads
        del file[key]
        file.create_dataset(key, data=png)
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert status == 0, err
    np.testing.assert_array_equal(np.round(RawScene(h5_copy).depth('Camera', 4) * 1000), depth)


def test_a_cut_jpeg_in_the_rgb_h5_is_refused(h5_copy, tmp_path, capsys):
    key = 'rgb/rgb_00003.jpg'
    with h5py.File(h5_copy / 'Camera_03.h5', 'a') as file:
        whole = file[key][()]
        del file[key]
        file.create_dataset(key, data=whole[:-200])
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'Camera_03.h5', 'rgb_00003.jpg', 'cut')


def test_the_frame_count_comes_from_the_videos_not_the_ground_truth(h5_copy, tmp_path, caplog_mm):
    path = h5_copy / 'ground_truth.json'
    truth = json.loads(path.read_text())
    for frame in ('0', '9', '10', '11'):
        del truth[frame]
    path.write_text(json.dumps(truth))
    scene = RawScene(h5_copy)
    assert scene.num_frames == 12 and scene.check() == 12
    result = create_data([h5_copy], tmp_path / 'ovpkl', num_anchors=10, progress=False)
    assert any('no entry for 4 of the 12 video frames (first: 0)' in m for m in caplog_mm)
    assert len(result.pickles) == 1


def test_frames_beyond_the_videos_are_refused(h5_copy):
    scene = RawScene(h5_copy)
    with pytest.raises(FrameReadError, match='--frames 13: the videos have 12 frames'):
        scene.check(13)
    assert scene.check(5) == 5


def test_an_rgb_h5_without_frames_is_refused(h5_copy):
    with h5py.File(h5_copy / 'Camera.h5', 'a') as file:
        for key in list(file['rgb']):
            del file['rgb'][key]
    with h5py.File(h5_copy / 'Camera_01.h5', 'a') as file:
        for key in list(file['rgb']):
            del file['rgb'][key]
    scene = RawScene(h5_copy, cameras=['Camera', 'Camera_01'])
    with pytest.raises(FrameReadError, match='no frames'):
        scene.check()


def test_more_groups_than_camera_sets_are_clamped_and_logged(h5_copy, tmp_path, capsys, caplog_mm):
    status, err, out = convert(
        h5_copy, tmp_path, capsys, '--groups', '3', '--cameras-per-group', '10'
    )
    assert status == 0, err
    pickles = sorted(out.glob('*_infos.pkl'))
    assert [p.name for p in pickles] == [f'{h5_copy.name}+bev-sensor-1_infos.pkl']
    assert any('larger groups take all 4' in m for m in caplog_mm)
    assert any('3 asked for, 1 have different cameras' in m for m in caplog_mm)


def test_groups_are_distinct_and_centred_like_inference(h5_copy):
    scene = RawScene(h5_copy)
    cameras = list(scene.calibration.values())
    coverage = camera_footprint(cameras, cell=0.5)
    groups = create_camera_groups(coverage, cameras, 4, (2, 3), min_overlap_threshold=0.0)
    assert len({g.cameras for g in groups}) == len(groups)
    for group in groups:  # the origin tools/infer.py --cameras finds for the same cameras
        chosen = [scene.calibration[c] for c in group.cameras]
        np.testing.assert_array_equal(group.origin, cameras_origin(chosen))


def test_the_tool_prints_one_line_and_debug_the_traceback(h5_copy, tmp_path):
    with h5py.File(h5_copy / 'Camera_02.h5', 'a') as file:
        del file['rgb/rgb_00011.jpg']
    command = [sys.executable, 'tools/create_data.py', str(h5_copy), '--out', str(tmp_path / 'o')]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count('\n') == 1, done.stderr
    assert done.stderr.startswith('create_data: ') and 'Camera_02.h5' in done.stderr
    done = subprocess.run([*command, '--debug'], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and 'Traceback' in done.stderr and 'FrameReadError' in done.stderr
    assert not (tmp_path / 'o').exists()


def _edit_camera(scene, camera: str, edit) -> None:
    """Apply ``edit`` to the calibration.json entry (a dict) of ``camera``."""
    path = scene / 'calibration.json'
    calibration = json.loads(path.read_text())
    sensor = next(s for s in calibration['sensors'] if s['id'] == camera)
    edit(sensor)
    path.write_text(json.dumps(calibration))


def _set_attribute(name: str, value: str):
    def edit(sensor):
        for item in sensor['attributes']:
            if item['name'] == name:
                item['value'] = value

    return edit


def test_a_video_of_another_size_or_rate_than_its_calibration_is_refused(
    mp4_copy, tmp_path, capsys
):
    calibration = (mp4_copy / 'calibration.json').read_text()
    _edit_camera(mp4_copy, 'Camera_01', _set_attribute('frameWidth', '640'))
    status, err, out = convert(mp4_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'Camera_01.mp4', 'frames of', "'Camera_01' 640x180")
    (mp4_copy / 'calibration.json').write_text(calibration)
    _edit_camera(mp4_copy, 'Camera_02', _set_attribute('fps', '15'))
    status, err, out = convert(mp4_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'Camera_02.mp4', 'frames per second', "'Camera_02' 15")


def test_an_image_size_guessed_from_the_principal_point_gives_way_to_the_images(
    h5_copy, tmp_path, capsys, caplog_mm
):
    def without_size(sensor):
        sensor['attributes'] = [
            a for a in sensor['attributes'] if a['name'] not in ('frameWidth', 'frameHeight')
        ]
        sensor['intrinsicMatrix'][0][2] += 0.7  # a principal point off the centre
        sensor.pop('cameraMatrix', None)

    _edit_camera(h5_copy, 'Camera', without_size)
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert status == 0, err
    assert any("camera 'Camera': the images' size" in m for m in caplog_mm)


def test_depth_for_some_cameras_only_or_of_another_size_is_refused(h5_copy, tmp_path, capsys):
    depth_file = h5_copy / 'depth_maps' / 'Camera_02.h5'
    kept = depth_file.read_bytes()
    depth_file.unlink()
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, "no depth for camera(s) ['Camera_02']", 'every camera')
    depth_file.write_bytes(kept)
    with h5py.File(depth_file, 'a') as file:  # depth maps at half the images' size
        for key in list(file):
            data = file[key][()]
            if data.ndim == 1:  # encoded PNG bytes
                data = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
            del file[key]
            file.create_dataset(key, data=np.ascontiguousarray(data[::2, ::2]))
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, 'depth_maps/Camera_02.h5', 'depth maps of', "the image's size")


def test_a_second_run_into_the_same_folder_is_refused_unless_told_what_to_do(
    h5_copy, mp4_copy, tmp_path, capsys, caplog_mm
):
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert status == 0, err
    first = sorted(path.name for path in out.iterdir())
    status, err, _ = convert(mp4_copy, tmp_path, capsys)
    assert status == 2 and '--append adds these scenes' in err and 'Warehouse_h5_infos.pkl' in err
    assert sorted(path.name for path in out.iterdir()) == first  # nothing touched
    status, err, _ = convert(mp4_copy, tmp_path, capsys, '--append')
    assert status == 0, err
    assert {'Warehouse_h5_infos.pkl', 'Warehouse_mp4_infos.pkl'} <= {p.name for p in out.iterdir()}
    assert any('1 pickles written now and 1 of an earlier run' in m for m in caplog_mm)
    # Another data root or other classes cannot join them; anchors of another count go.
    (tmp_path / 'elsewhere').mkdir()
    moved = shutil.copytree(mp4_copy, tmp_path / 'elsewhere' / 'Warehouse_moved')
    status, err, _ = convert(moved, tmp_path, capsys, '--append')
    assert status == 2 and '--append: its paths are relative to' in err, err
    others = ['AgilityDigit', 'FourierGR1T2', 'NovaCarter', 'Transporter', 'Forklift']
    status, err, _ = convert(
        mp4_copy, tmp_path, capsys, '--append', '--classes', 'Person', '--ignore-classes', *others
    )
    assert status == 2 and 'converted with --classes Person Forklift' in err, err
    assert (out / 'anchor_init_kmeans10.npy').exists()
    status, err, _ = convert(mp4_copy, tmp_path, capsys, '--append', '--anchors', '12')
    assert status == 0, err
    assert not (out / 'anchor_init_kmeans10.npy').exists()
    assert (out / 'anchor_init_kmeans12.npy').exists()
    status, err, _ = convert(mp4_copy, tmp_path, capsys, '--overwrite')
    assert status == 0, err
    assert not (out / 'Warehouse_h5_infos.pkl').exists()
    assert (out / 'Warehouse_mp4_infos.pkl').exists()


def test_two_scenes_of_one_name_are_refused_and_a_dot_is_named_after_its_folder(
    h5_copy, tmp_path, monkeypatch
):
    twin = tmp_path / 'other' / h5_copy.name
    shutil.copytree(h5_copy, twin)
    out = tmp_path / 'ovpkl'
    with pytest.raises(InputError, match="two scenes named 'Warehouse_h5'.*rename one folder"):
        create_data([h5_copy, twin], out, num_anchors=0, progress=False)
    assert not out.exists()
    monkeypatch.chdir(h5_copy)
    assert RawScene('.').name == 'Warehouse_h5'


def test_two_rgb_sources_of_one_camera_are_refused(h5_copy, mp4_scene, tmp_path, capsys):
    (h5_copy / 'videos').mkdir()
    shutil.copy(mp4_scene[0] / 'videos' / 'Camera_01.mp4', h5_copy / 'videos')
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(status, err, out, "'Camera_01' has two RGB sources", 'remove one')


def test_an_output_under_a_file_is_one_line(h5_copy, tmp_path, capsys):
    (tmp_path / 'afile').write_text('')
    argv = [str(h5_copy), '--out', str(tmp_path / 'afile' / 'x')]
    with pytest.raises(SystemExit) as exit_:
        run_tool('create_data', create_data_main, argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.strip() == (
        f'create_data: --out {tmp_path / "afile" / "x"}: {tmp_path / "afile"} is a file, not a '
        'folder'
    )


def test_camera_to_world_written_for_world_to_camera_is_refused(h5_copy, tmp_path, capsys):
    def inverted(sensor):
        extrinsic = np.vstack([np.array(sensor['extrinsicMatrix']), [0, 0, 0, 1]])
        sensor['extrinsicMatrix'] = np.linalg.inv(extrinsic)[:3].tolist()
        sensor.pop('cameraMatrix', None)

    _edit_camera(h5_copy, 'Camera_02', inverted)
    status, err, out = convert(h5_copy, tmp_path, capsys)
    assert_refused(
        status, err, out, "camera 'Camera_02': of", 'project into their 2D boxes', 'camera-to-world'
    )
