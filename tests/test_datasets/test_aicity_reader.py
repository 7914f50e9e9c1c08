"""Reading raw scenes: calibration, ground truth, RGB from h5 and mp4, depth from h5."""

import json
import logging
import shutil

import cv2
import h5py
import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from mmsparse4d.datasets.aicity import (
    CLASSES,
    KNOWN_CLASSES,
    CalibrationError,
    FrameReadError,
    GroundTruthError,
    H5DepthReader,
    H5RgbReader,
    Mp4Reader,
    RawScene,
    UnknownClassError,
    canonical_class_name,
    load_calibration,
    load_ground_truth,
    open_depth_reader,
)
from mmsparse4d.utils.input_error import InputError


def copy_scene(source, tmp_path):
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


class ListHandler(logging.Handler):
    """Keeps the messages logged while it is attached."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def log_messages():
    """Messages that print_log(logger='current') writes during the test."""
    logger = MMLogger.get_current_instance()
    handler = ListHandler()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def gt_object(object_type, object_id, location=(1.0, 2.0, 0.9)):
    """One ground-truth object as a user's file writes it (spaced keys)."""
    return {
        'object type': object_type,
        'object id': object_id,
        '3d location': list(location),
        '3d bounding box scale': [0.5, 0.6, 1.8],
        '3d bounding box rotation': [0.0, 0.0, 0.3],
        '2d bounding box visible': {'Camera': [10, 20, 30, 60]},
    }


def camera_sensor(camera_id='Camera', sensor_type='camera', **matrices):
    """A hand-written pinhole camera 6 m from the origin, looking along world +y."""
    rotation = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # x right, y down, z = world y
    translation = -rotation @ np.array([0.0, -6.0, 1.5])
    intrinsic = np.array([[800.0, 0, 320], [0, 800, 240], [0, 0, 1]])
    extrinsic = np.c_[rotation, translation]
    sensor = {
        'type': sensor_type,
        'id': camera_id,
        'attributes': [
            {'name': 'frameWidth', 'value': 640},
            {'name': 'frameHeight', 'value': 480},
        ],
        'intrinsicMatrix': intrinsic.tolist(),
        'extrinsicMatrix': extrinsic.tolist(),
        'cameraMatrix': (intrinsic @ extrinsic).tolist(),
    }
    sensor.update(matrices)
    return sensor


def write_json(path, content):
    path.write_text(json.dumps(content))
    return path


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
        (
            lambda s: [s.pop('intrinsicMatrix'), s.pop('cameraMatrix')],
            "camera 'Camera_02': missing key 'intrinsicMatrix'",
        ),
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
        (
            lambda s: s['cameraMatrix'][1].__setitem__(2, float('nan')),
            "camera 'Camera_02': key 'cameraMatrix' holds non-finite values",
        ),
        (
            lambda s: s.__setitem__('cameraMatrix', np.array(s['cameraMatrix'])[:, [1, 0, 2, 3]]),
            "camera 'Camera_02': key 'cameraMatrix' is not intrinsicMatrix @ extrinsicMatrix",
        ),
        (
            lambda s: s.__setitem__('intrinsicMatrix', np.zeros((3, 3))),
            "camera 'Camera_02': key 'intrinsicMatrix' is all zeros",
        ),
        (
            lambda s: s['intrinsicMatrix'][1].__setitem__(1, 0.0),
            "key 'intrinsicMatrix' has non-positive focal lengths (fx = ",
        ),
        (
            lambda s: s['intrinsicMatrix'].__setitem__(2, [0.0, 0.0, 0.0]),
            "key 'intrinsicMatrix' is not upper triangular with last row (0, 0, 1)",
        ),
        (
            lambda s: s.__setitem__('extrinsicMatrix', np.zeros((3, 4))),
            "camera 'Camera_02': key 'extrinsicMatrix' does not hold a rotation [R|t]: its "
            '3x3 part R is all zeros',
        ),
        (
            lambda s: [s.pop('extrinsicMatrix'), s.pop('cameraMatrix')],
            "camera 'Camera_02': missing key 'extrinsicMatrix' (a camera needs intrinsicMatrix "
            'and extrinsicMatrix, or cameraMatrix)',
        ),
        (
            lambda s: [s.pop('extrinsicMatrix'), s['intrinsicMatrix'][0].__setitem__(0, 999.0)],
            "camera 'Camera_02': key 'cameraMatrix' is not intrinsicMatrix @ extrinsicMatrix",
        ),
        (
            lambda s: [
                s.pop('intrinsicMatrix'),
                s.pop('extrinsicMatrix'),
                s.__setitem__('cameraMatrix', np.zeros((3, 4))),
            ],
            "camera 'Camera_02': key 'cameraMatrix' is all zeros",
        ),
        (
            lambda s: [
                s.pop('intrinsicMatrix'),
                s.pop('extrinsicMatrix'),
                s['cameraMatrix'].__setitem__(2, s['cameraMatrix'][1]),
            ],
            "camera 'Camera_02': key 'cameraMatrix': its left 3x3 part is singular",
        ),
    ],
)
def test_calibration_errors_name_file_camera_and_key(h5_scene, tmp_path, edit, message):
    content = json.loads((h5_scene[0] / 'calibration.json').read_text())
    edit(content['sensors'][2])
    path = tmp_path / 'calibration.json'
    path.write_text(json.dumps(content, default=np.ndarray.tolist))
    with pytest.raises(CalibrationError) as error:
        load_calibration(path)
    assert str(path) in str(error.value) and message in str(error.value)


@pytest.mark.parametrize('missing', ['intrinsicMatrix', 'extrinsicMatrix'])
def test_camera_matrix_stands_in_for_a_missing_intrinsic_or_extrinsic(h5_scene, tmp_path, missing):
    content = json.loads((h5_scene[0] / 'calibration.json').read_text())
    for sensor in content['sensors']:
        sensor.pop(missing)
    path = write_json(tmp_path / 'calibration.json', content)
    expected = load_calibration(h5_scene[0] / 'calibration.json')
    for name, camera in load_calibration(path).items():
        np.testing.assert_allclose(camera.intrinsic, expected[name].intrinsic, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            camera.world_to_camera, expected[name].world_to_camera, rtol=1e-6, atol=1e-6
        )


def test_sensors_not_a_list_is_named(tmp_path):
    path = write_json(tmp_path / 'calibration.json', {'sensors': {'Camera': {}}})
    with pytest.raises(CalibrationError, match='key "sensors" \\(a list of sensors\\) is a dict'):
        load_calibration(path)


def test_sensor_types_are_compared_ignoring_case_and_others_are_logged(tmp_path, log_messages):
    # "Camera" was skipped without a word, and the ground truth was then blamed for naming it.
    sensors = [
        camera_sensor('Camera', 'Camera'),
        camera_sensor('Camera_01', 'CAMERA'),
        {'type': 'lidar', 'id': 'Lidar_00'},
        camera_sensor('Camera_02'),
    ]
    path = write_json(tmp_path / 'calibration.json', {'sensors': sensors})
    assert list(load_calibration(path)) == ['Camera', 'Camera_01', 'Camera_02']
    assert f'{path}: skipped 1 sensors whose type is not "camera": Lidar_00 (lidar)' in (
        log_messages
    )
    write_json(path, {'sensors': [{'type': 'lidar', 'id': 'Lidar_00'}]})
    with pytest.raises(CalibrationError, match=r'no sensor of type "camera" \(skipped: Lidar_00'):
        load_calibration(path)


@pytest.mark.parametrize('scale', [1.0, 0.01, -2.5], ids=['as-is', 'scaled', 'negated'])
def test_camera_matrix_alone_gives_the_same_projections(h5_scene, tmp_path, scale):
    path, model = h5_scene
    full = load_calibration(path / 'calibration.json')
    content = json.loads((path / 'calibration.json').read_text())
    for sensor in content['sensors']:
        del sensor['intrinsicMatrix'], sensor['extrinsicMatrix']
        sensor['cameraMatrix'] = (scale * np.array(sensor['cameraMatrix'])).tolist()
    alone = load_calibration(write_json(tmp_path / 'calibration.json', content))
    points = np.random.default_rng(0).uniform([-15, -10, 0], [15, 10, 3], (200, 3))
    for name, camera in alone.items():
        reference = full[name]
        assert np.linalg.det(camera.world_to_camera[:3, :3]) == pytest.approx(1, abs=1e-12)
        assert camera.intrinsic[2, 2] == 1 and (np.diag(camera.intrinsic) > 0).all()
        np.testing.assert_allclose(camera.intrinsic, reference.intrinsic, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(camera.world_to_camera, reference.world_to_camera, atol=1e-12)
        np.testing.assert_allclose(camera.center, reference.center, rtol=1e-12)
        uv, depth = camera.project(points)
        expected_uv, expected_depth = reference.project(points)
        np.testing.assert_allclose(uv, expected_uv, rtol=1e-12)
        np.testing.assert_allclose(depth, expected_depth, rtol=1e-12)
        assert (camera.width, camera.height, camera.fps) == (320, 180, 30.0)


def test_missing_image_size_is_guessed_and_logged(tmp_path, log_messages):
    sensor = camera_sensor()
    del sensor['attributes']
    path = write_json(tmp_path / 'calibration.json', {'sensors': [sensor]})
    camera = load_calibration(path)['Camera']
    assert (camera.width, camera.height) == (640, 480)
    assert any(
        f'{path}: camera \'Camera\': no "frameWidth"/"frameHeight"' in message
        and 'guessed from the principal point as 640x480' in message
        for message in log_messages
    )


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


def test_class_order_and_the_seventh_class():
    # CLASSES fixes the submission class ids 0-5 and the shipped model's labels.
    six = 'Person Forklift NovaCarter Transporter FourierGR1T2 AgilityDigit'
    assert CLASSES == tuple(six.split())
    assert KNOWN_CLASSES == (*CLASSES, 'PalletTruck')


@pytest.mark.parametrize(
    'spellings, expected',
    [
        ('Person,person,PERSON, person ,character', 'Person'),
        ('Forklift,forklift,FORK_LIFT', 'Forklift'),
        ('NovaCarter,nova_carter,novacarter,Nova Carter,NOVA-CARTER,Nova_Carter', 'NovaCarter'),
        ('Transporter,transporter,iw_hub,iw-hub', 'Transporter'),
        ('FourierGR1T2,gr1_t2,fourier_gr1_t2,Fourier_GR1_T2_Humanoid', 'FourierGR1T2'),
        ('AgilityDigit,agility_digit,Agility_Digit_Humanoid', 'AgilityDigit'),
        ('PalletTruck,pallet_truck,Pallet_Truck,palletjackforklift,forklift_1195', 'PalletTruck'),
    ],
)
def test_alias_table(spellings, expected):
    assert {canonical_class_name(name) for name in spellings.split(',')} == {expected}


def test_unknown_and_ambiguous_class_names_are_refused():
    with pytest.raises(UnknownClassError, match="unknown class 'Cat'; known classes: Person, "):
        canonical_class_name('Cat')
    with pytest.raises(UnknownClassError, match="'humanoid' is ambiguous: .*FourierGR1T2"):
        canonical_class_name('humanoid')


def test_ground_truth_reads_every_spelling_as_its_class(tmp_path):
    # Lower-case names as NVIDIA's tools write them, and the 2026 edition's seventh class.
    content = {
        '0': [gt_object('person', 1), gt_object('nova_carter', 2), gt_object('iw_hub', 3)],
        '1': [gt_object('PalletTruck', 4), gt_object('gr1_t2', 5)],
    }
    ground_truth = load_ground_truth(write_json(tmp_path / 'ground_truth.json', content))
    names = {o.object_id: o.class_name for objects in ground_truth.values() for o in objects}
    assert names == {
        1: 'Person',
        2: 'NovaCarter',
        3: 'Transporter',
        4: 'PalletTruck',
        5: 'FourierGR1T2',
    }


def test_ground_truth_unknown_class_names_file_frame_and_object(tmp_path):
    content = {'0': [gt_object('Person', 1)], '4': [gt_object('Person', 1), gt_object('Cat', 9)]}
    path = write_json(tmp_path / 'ground_truth.json', content)
    with pytest.raises(GroundTruthError) as error:
        load_ground_truth(path)
    message = str(error.value)
    assert message.startswith(f"{path}: frame 4, object 1 (object id 9), key 'object type': ")
    assert "unknown class 'Cat'; known classes: Person, Forklift" in message
    assert 'PalletTruck' in message and '--ignore-classes' in message


def test_ground_truth_ignored_classes_are_counted_and_logged(tmp_path, log_messages):
    content = {
        '0': [gt_object('Person', 1), gt_object('box', 7), gt_object('pallet_truck', 8)],
        '1': [gt_object('Person', 1), gt_object('Box', 7), gt_object('PalletTruck', 8)],
        '2': [gt_object('BOX', 7)],
    }
    path = write_json(tmp_path / 'ground_truth.json', content)
    ground_truth = load_ground_truth(path, ignore_classes=['box', 'Pallet Truck'])
    assert {f: [o.class_name for o in objects] for f, objects in ground_truth.items()} == {
        0: ['Person'],
        1: ['Person'],
        2: [],
    }
    assert f'{path}: dropped 5 objects of ignored classes (PalletTruck 2, box 3)' in log_messages


def test_raw_scene_ignore_classes(h5_scene, tmp_path, log_messages):
    path = copy_scene(h5_scene[0], tmp_path)
    content = json.loads((path / 'ground_truth.json').read_text())
    for objects in content.values():
        objects[0]['object type'] = 'crate'
        objects[1]['object type'] = 'pallet_truck'
    (path / 'ground_truth.json').write_text(json.dumps(content))
    with pytest.raises(GroundTruthError, match=r"frame 0, object 0 \(object id 0\), .*'crate'"):
        RawScene(path)
    scene = RawScene(path, ignore_classes=['crate'])
    assert [o.class_name for o in scene.objects(3)][0] == 'PalletTruck'
    assert len(scene.objects(3)) == 5
    assert f'{path / "ground_truth.json"}: dropped 12 objects of ignored classes (crate 12)' in (
        log_messages
    )


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
    with pytest.raises(InputError, match=r"calibration.json: no camera \['Camera_09'\]"):
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


def _read_in_forked_child(read, index, results):
    results.put(int(read(index).sum()))


def _forked_read(read, index) -> int:
    """``read(index)`` in a forked child; fails if the child hangs (60 s) or fails."""
    import multiprocessing

    context = multiprocessing.get_context('fork')
    results = context.Queue()
    child = context.Process(target=_read_in_forked_child, args=(read, index, results))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, 'the forked child hung or failed reading'
    return results.get(timeout=5)


def test_mp4_readers_open_before_a_fork_read_in_the_child(mp4_scene):
    # A data loader forks its workers from a process that may have decoded frames already
    # (a benchmark's in-process pass, a sanity read): the child inherits the open decoder
    # without its threads, and decoding with it, or freeing it (the worker's frame cache
    # started afresh), waited forever.
    from mmsparse4d.datasets.transforms.frame_cache import FrameCache

    video = mp4_scene[0] / 'videos' / 'Camera_01.mp4'
    reader = Mp4Reader(video)
    expected = [int(reader.read(i).sum()) for i in (5, 6)]
    assert _forked_read(reader.read, 6) == expected[1]
    assert int(reader.read(7).sum()) >= 0  # the parent's decoder goes on
    cache = FrameCache()
    cache.rgb(str(video), 5)
    assert _forked_read(lambda index: cache.rgb(str(video), index), 6) == expected[1]


class _DecoderThreads(torch.utils.data.Dataset):
    """Reads one frame and reports the decoder's thread count and the frame's pixel sum."""

    def __init__(self, video):
        self.video = video

    def __len__(self):
        return 1

    def __getitem__(self, index):
        reader = Mp4Reader(self.video)
        pixels = int(reader.read(3).sum())
        return reader._stream.thread_count, pixels


def test_a_data_worker_decodes_mp4_on_one_thread(mp4_scene):
    # Many workers, each with a decoder per camera: FFmpeg's thread per core (and its
    # frame threads decoding ahead) oversubscribed the cores.
    dataset = _DecoderThreads(mp4_scene[0] / 'videos' / 'Camera_01.mp4')
    in_main_process = dataset[0]
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1)
    (in_worker,) = list(loader)
    assert in_worker[0] == 1 and in_main_process[0] != 1
    assert in_worker[1] == in_main_process[1]  # the same frame, decoded either way


class _CollectThenRead(_DecoderThreads):
    """Runs the garbage collector in the worker first, as a worker's own allocations do."""

    def __getitem__(self, index):
        import gc

        gc.enable()
        gc.collect()
        return super().__getitem__(index)


def test_dropped_readers_leave_no_decoder_for_a_forked_worker_to_free(mp4_scene):
    # A dropped reader's decoder lived on in PyAV's own reference cycles (container and
    # streams) until the cyclic collector ran, with its threads; a worker forked before
    # then inherited it without the threads and crashed when its collector freed it.
    import gc

    from mmsparse4d.datasets.transforms.frame_cache import FrameCache

    video = mp4_scene[0] / 'videos' / 'Camera_01.mp4'
    expected = int(Mp4Reader(video).read(3).sum())
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            reader = Mp4Reader(video)
            reader.read(5)
            cache = FrameCache()
            cache.rgb(str(video), 6)
            del reader, cache
        loader = torch.utils.data.DataLoader(
            _CollectThenRead(video), batch_size=None, num_workers=1, timeout=60
        )
        ((_, pixels),) = list(loader)
    finally:
        gc.enable()
    assert pixels == expected


def test_a_closed_reader_reads_the_next_frame_with_a_new_decoder(mp4_scene):
    # close() kept the position of the freed decoder: the next frame's read then iterated
    # no decoder at all.
    reader = Mp4Reader(mp4_scene[0] / 'videos' / 'Camera_01.mp4')
    expected = int(Mp4Reader(reader.path).read(6).sum())
    reader.read(5)
    reader.close()
    assert int(reader.read(6).sum()) == expected
