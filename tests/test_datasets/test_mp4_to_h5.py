"""mmsparse4d/datasets/converters/mp4_to_h5.py and tools/mp4_to_h5.py: a raw scene copied
with its mp4 RGB as h5 JPEG frames reads as the same scene."""

import pickle
import shutil

import h5py
import numpy as np
import pytest

from mmsparse4d.datasets.aicity import H5RgbReader, Mp4Reader, RawScene
from mmsparse4d.datasets.converters.create_data import create_data
from mmsparse4d.datasets.converters.mp4_to_h5 import transcode_scene_rgb
from mmsparse4d.utils.input_error import InputError
from tests.conftest import run_repo_tool


@pytest.fixture(scope='module')
def transcoded(mp4_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp('transcoded') / mp4_scene[0].name
    return out, transcode_scene_rgb(mp4_scene[0], out)


def test_every_video_becomes_h5_jpeg_frames_of_the_same_pixels(mp4_scene, transcoded):
    source, (out, cameras) = RawScene(mp4_scene[0]), transcoded
    copy = RawScene(out)
    assert sorted(cameras) == source.cameras and set(cameras.values()) == {source.num_frames}
    assert copy.num_frames == source.num_frames
    assert not (out / 'videos').exists() and not (out.parent / f'{out.name}.partial').exists()
    for camera in source.cameras:
        assert isinstance(copy._rgb[camera], H5RgbReader)
        video = Mp4Reader(mp4_scene[0] / 'videos' / f'{camera}.mp4')
        for frame in (0, source.num_frames - 1):
            original = video.read(frame).astype(np.int16)
            stored = copy._rgb[camera].read(frame).astype(np.int16)
            assert stored.shape == original.shape
            # A second lossy encoding at quality 92: about one level on average.
            assert np.abs(stored - original).mean() < 2.0
        video.close()
        np.testing.assert_array_equal(copy.depth(camera, 5), source.depth(camera, 5))
    for name in ('calibration.json', 'ground_truth.json'):
        assert (out / name).read_bytes() == (mp4_scene[0] / name).read_bytes()


def test_the_copy_converts_with_its_rgb_read_from_h5(transcoded, tmp_path):
    out, _ = transcoded
    create_data([out], tmp_path / 'ovpkl', num_anchors=0, progress=False)
    (pickle_file,) = sorted((tmp_path / 'ovpkl').glob('*.pkl'))
    text = repr(pickle.loads(pickle_file.read_bytes())['infos'][0])
    assert '.h5' in text and '.mp4' not in text


def test_refusals_come_before_anything_is_written(mp4_scene, tmp_path):
    existing = tmp_path / 'existing'
    existing.mkdir()
    with pytest.raises(InputError, match='exists; choose a new folder'):
        transcode_scene_rgb(mp4_scene[0], existing)
    with pytest.raises(InputError, match='--quality 0: must be 1-100'):
        transcode_scene_rgb(mp4_scene[0], tmp_path / 'q0', quality=0)
    # A camera with an mp4 and an rgb/ group in <Camera>.h5: two RGB sources.
    both = tmp_path / 'both'
    shutil.copytree(mp4_scene[0], both)
    with h5py.File(both / 'Camera_01.h5', 'w') as file:
        file.create_dataset('rgb/rgb_00000.jpg', data=np.zeros(4, np.uint8))
    with pytest.raises(InputError, match="camera 'Camera_01' has two RGB sources"):
        transcode_scene_rgb(both, tmp_path / 'both_out')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['both', 'existing']


def test_depth_in_the_cameras_own_h5_gets_the_rgb_frames_added(mp4_scene, tmp_path):
    # The depth of Camera_01 moved into Camera_01.h5, the Isaac layout's place for it.
    scene = tmp_path / 'scene'
    shutil.copytree(mp4_scene[0], scene)
    (scene / 'depth_maps' / 'Camera_01.h5').rename(scene / 'Camera_01.h5')
    source = RawScene(scene)
    out = tmp_path / 'out'
    transcode_scene_rgb(scene, out)
    copy = RawScene(out)
    np.testing.assert_array_equal(copy.depth('Camera_01', 3), source.depth('Camera_01', 3))
    assert isinstance(copy._rgb['Camera_01'], H5RgbReader)
    assert copy._rgb['Camera_01'].path == out / 'Camera_01.h5'
    # The source's depth file is left as it was (copied, not linked, before writing).
    with h5py.File(scene / 'Camera_01.h5', 'r') as file:
        assert 'rgb' not in file


def test_the_tool_copies_and_refuses_in_one_line(mp4_scene, tmp_path):
    done = run_repo_tool('mp4_to_h5.py', mp4_scene[0], '--out', tmp_path, '--quality', '80')
    assert done.returncode == 0, done.stderr
    assert 'videos transcoded' in done.stdout
    assert RawScene(tmp_path / mp4_scene[0].name).num_frames == RawScene(mp4_scene[0]).num_frames
    again = run_repo_tool('mp4_to_h5.py', mp4_scene[0], '--out', tmp_path)
    assert again.returncode == 2
    (line,) = again.stderr.splitlines()
    assert line.startswith('mp4_to_h5: ') and 'exists; choose a new --out' in line
    not_a_scene = run_repo_tool('mp4_to_h5.py', tmp_path / 'nothing', '--out', tmp_path / 'o')
    assert not_a_scene.returncode == 2 and 'no calibration.json' in not_a_scene.stderr
