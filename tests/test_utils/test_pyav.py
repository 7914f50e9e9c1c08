"""Without PyAV, anything that meets an mp4 says so in one line naming what needed it,
before it writes anything."""

import sys

import pytest

from mmsparse4d.datasets.aicity.frame_readers import Mp4Reader
from mmsparse4d.datasets.synthetic.protocol import scene_spec
from mmsparse4d.datasets.synthetic.render_scenes import render_scenes
from mmsparse4d.datasets.synthetic.writer import write_synthetic_scene
from mmsparse4d.utils.input_error import InputError
from mmsparse4d.utils.pyav import import_pyav


@pytest.fixture
def without_pyav(monkeypatch):
    # None in sys.modules makes `import av` raise ImportError, as where it is not installed.
    monkeypatch.setitem(sys.modules, 'av', None)


def test_import_pyav_returns_the_module_where_it_is_installed():
    assert import_pyav('x.mp4').__name__ == 'av'


def test_import_pyav_names_what_needed_it(without_pyav):
    with pytest.raises(InputError, match='needs PyAV') as error:
        import_pyav('scene/videos/Camera.mp4')
    assert str(error.value).startswith('scene/videos/Camera.mp4: ')
    assert 'pip install av' in str(error.value)


def test_writing_an_mp4_scene_without_pyav_writes_nothing(without_pyav, tmp_path):
    out = tmp_path / 'scene'
    with pytest.raises(InputError, match='--rgb-format mp4: needs PyAV'):
        write_synthetic_scene(out, seed=1, num_cameras=2, num_frames=2, rgb_format='mp4')
    assert not out.exists()


def test_an_h5_scene_needs_no_pyav(without_pyav, tmp_path):
    write_synthetic_scene(
        tmp_path / 'scene', seed=1, num_cameras=2, num_frames=2, width=64, height=48, workers=1
    )
    assert (tmp_path / 'scene' / 'ground_truth.json').is_file()


def test_reading_an_mp4_without_pyav_names_the_video(mp4_scene, monkeypatch):
    video = next((mp4_scene[0] / 'videos').glob('*.mp4'))
    monkeypatch.setitem(sys.modules, 'av', None)
    with pytest.raises(InputError, match='needs PyAV') as error:
        Mp4Reader(video).count_frames()
    assert str(error.value).startswith(f'{video}: ')


def test_rendering_protocol_scenes_checks_pyav_before_starting(without_pyav, tmp_path):
    spec = scene_spec(1, num_frames=2)  # odd seeds are mp4
    assert spec.rgb_format == 'mp4'
    with pytest.raises(InputError, match='mp4 scenes: needs PyAV'):
        render_scenes([spec], tmp_path / 'raw', workers=1)
    assert not (tmp_path / 'raw').exists()
