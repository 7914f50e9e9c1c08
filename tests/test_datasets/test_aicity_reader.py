"""Reading raw scenes: calibration, ground truth, RGB from h5 and mp4, depth from h5."""

import json
import shutil

import cv2
import h5py
import numpy as np
import pytest

from mmsparse4d.datasets.aicity import (
    CalibrationError,
    FrameReadError,
    GroundTruthError,
    H5DepthReader,
    H5RgbReader,
    RawScene,
    load_calibration,
    load_ground_truth,
    open_depth_reader,
)


def copy_scene(source, tmp_path):
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


def test_calibration_reads_k_extrinsic_and_string_attributes(h5_scene):
    path, model = h5_scene
    cameras = load_calibration(path / 'calibration.json')
    assert list(cameras) == ['Camera', 'Camera_01', 'Camera_02', 'Camera_03']
    raw = json.loads((path / 'calibration.json').read_text())['sensors'][1]
    camera = cameras['Camera_01']
    assert isinstance(raw['attributes'][3]['value'], str)  # frameWidth written as a string
    assert (camera.width, camera.height, camera.fps) == (320, 180, 30.0)
    np.testing.assert_allclose(camera.projection[:3], raw['cameraMatrix'])
    np.testing.assert_allclose(camera.center, model.cameras[1].center)


@pytest.mark.parametrize(
    'edit, message',
    [
        (lambda s: s.pop('intrinsicMatrix'), "camera 'Camera_02': missing key 'intrinsicMatrix'"),
        (
            lambda s: s['extrinsicMatrix'][0].__setitem__(3, float('nan')),
            "camera 'Camera_02': key 'extrinsicMatrix' holds non-finite values",
        ),
        (
            lambda s: s.__setitem__('extrinsicMatrix', [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
            "key 'extrinsicMatrix' has shape (3, 3), expected (3, 4)",
        ),
        (
            lambda s: s['extrinsicMatrix'][0].__setitem__(0, 3.0),
            "key 'extrinsicMatrix' does not hold a rotation",
        ),
        (
            lambda s: s['attributes'][3].__setitem__('value', 'wide'),
            "attribute 'frameWidth' = 'wide' is not a number",
        ),
    ],
)
def test_calibration_errors_name_file_camera_and_key(h5_scene, tmp_path, edit, message):
    content = json.loads((h5_scene[0] / 'calibration.json').read_text())
    edit(content['sensors'][2])
    path = tmp_path / 'calibration.json'
    path.write_text(json.dumps(content))
    with pytest.raises(CalibrationError) as error:
        load_calibration(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_ground_truth_accepts_spaced_and_underscored_keys(h5_scene, tmp_path):
    path, _ = h5_scene
    spaced = load_ground_truth(path / 'ground_truth.json')
    content = json.loads((path / 'ground_truth.json').read_text())
    underscored = {
        frame: [{key.replace(' ', '_'): value for key, value in obj.items()} for obj in objects]
        for frame, objects in content.items()
    }
    (tmp_path / 'gt.json').write_text(json.dumps(underscored))
    other = load_ground_truth(tmp_path / 'gt.json')
    assert list(spaced) == list(range(12)) and list(other) == list(spaced)
    for a, b in zip(spaced[5], other[5], strict=True):
        assert (a.class_name, a.object_id) == (b.class_name, b.object_id)
        np.testing.assert_array_equal(a.location, b.location)
        assert a.visible_boxes.keys() == b.visible_boxes.keys()


def test_ground_truth_camera_missing_from_calibration_is_named(h5_scene, tmp_path):
    content = json.loads((h5_scene[0] / 'ground_truth.json').read_text())
    content['3'][0]['2d bounding box visible']['Camera_77'] = [1, 2, 3, 4]
    (tmp_path / 'gt.json').write_text(json.dumps(content))
    with pytest.raises(CalibrationError, match="frame 3, object 0: .* camera 'Camera_77'"):
        load_ground_truth(
            tmp_path / 'gt.json', cameras={'Camera', 'Camera_01', 'Camera_02', 'Camera_03'}
        )


def test_ground_truth_missing_field_is_named(h5_scene, tmp_path):
    content = json.loads((h5_scene[0] / 'ground_truth.json').read_text())
    del content['4'][1]['3d bounding box scale']
    (tmp_path / 'gt.json').write_text(json.dumps(content))
    with pytest.raises(GroundTruthError, match="frame 4, object 1: missing key '3d bounding box"):
        load_ground_truth(tmp_path / 'gt.json')


def test_h5_rgb_decoded_bgr_and_encoded_jpeg(tmp_path):
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgb[:, 5:, 2] = 90
    with h5py.File(tmp_path / 'Camera.h5', 'w') as file:
        file.create_dataset('rgb/rgb_00000.jpg', data=rgb[..., ::-1])  # BGR, as cv2 writes
        ok, jpeg = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
        file.create_dataset('rgb/rgb_00001.jpg', data=np.frombuffer(jpeg, np.uint8))
    reader = H5RgbReader(tmp_path / 'Camera.h5')
    np.testing.assert_array_equal(reader.read(0), rgb)
    decoded = reader.read(1).astype(int)  # lossy: compare away from the colour edge
    assert np.abs(decoded[:, :3] - rgb[:, :3]).max() <= 6
    assert np.abs(decoded[:, 7:] - rgb[:, 7:]).max() <= 6
    with pytest.raises(FrameReadError, match="Camera.h5: no dataset 'rgb/rgb_00002.jpg'"):
        reader.read(2)


@pytest.mark.parametrize('layout', ['root', 'group'])
@pytest.mark.parametrize('encoded', [False, True], ids=['uint16', 'png-bytes'])
def test_depth_layouts_and_encodings_give_metres(tmp_path, layout, encoded):
    millimetres = np.array([[0, 1500], [3215, 65000]], dtype=np.uint16)
    key = 'distance_to_image_plane_00042.png'
    if layout == 'group':
        key = 'distance_to_image_plane_png/' + key
    data = np.frombuffer(cv2.imencode('.png', millimetres)[1], np.uint8) if encoded else millimetres
    with h5py.File(tmp_path / 'Camera.h5', 'w') as file:
        file.create_dataset(key, data=data)
    reader = open_depth_reader(tmp_path / 'Camera.h5')
    assert isinstance(reader, H5DepthReader)
    np.testing.assert_allclose(reader.read(42), [[0, 1.5], [3.215, 65.0]])


def test_raw_scene_h5_layout(h5_scene):
    path, model = h5_scene
    scene = RawScene(path)
    assert scene.cameras == [c.name for c in model.cameras]
    assert scene.num_frames == 12
    image = scene.rgb('Camera_02', 7)
    assert image.shape == (180, 320, 3) and image.dtype == np.uint8
    depth = scene.depth('Camera_02', 7)
    assert depth.shape == (180, 320) and depth.dtype == np.float32 and depth.max() > 1
    assert len(scene.objects(7)) == 6


def test_mp4_random_access_is_frame_accurate(h5_scene, mp4_scene):
    reference = RawScene(h5_scene[0])  # same seed: the same frames, JPEG instead of H.264
    video = RawScene(mp4_scene[0])
    sequential = [video.rgb('Camera_01', i) for i in range(12)]
    for index in [9, 2, 11, 0, 5, 6, 3]:  # out of order: seeks backwards and forwards
        frame = video.rgb('Camera_01', index)
        np.testing.assert_array_equal(frame, sequential[index])
        error = np.abs(frame.astype(int) - reference.rgb('Camera_01', index)).mean()
        neighbour = min(index + 1, 11) if index < 11 else index - 1
        wrong = np.abs(frame.astype(int) - reference.rgb('Camera_01', neighbour)).mean()
        assert error < 4 and error < wrong


def test_raw_scene_errors_name_what_is_missing(h5_scene, tmp_path):
    path = copy_scene(h5_scene[0], tmp_path)
    with pytest.raises(KeyError, match=r"no camera \['Camera_09'\]"):
        RawScene(path, cameras=['Camera', 'Camera_09'])
    scene = RawScene(path)
    with pytest.raises(FrameReadError, match="no dataset 'rgb/rgb_00099.jpg'"):
        scene.rgb('Camera', 99)
    (path / 'Camera_03.h5').unlink()
    with pytest.raises(FrameReadError, match="camera 'Camera_03' has no RGB"):
        RawScene(path)
    (path / 'depth_maps' / 'Camera_01.h5').unlink()
    with pytest.raises(FrameReadError, match="camera 'Camera_01' has no depth"):
        RawScene(path, cameras=['Camera', 'Camera_01'], require_depth=True)
