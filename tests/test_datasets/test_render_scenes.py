"""Protocol scenes rendered by their own make_synthetic.py processes: a scene the tool
refuses is its one line, not a traceback."""

import pytest

from mmsparse4d.datasets.synthetic.protocol import SceneSpec
from mmsparse4d.datasets.synthetic.render_scenes import render_scenes
from mmsparse4d.utils.input_error import InputError


def test_a_scene_the_generator_refuses_is_its_one_line(tmp_path):
    spec = SceneSpec(3, 2, 2, 'h5', 0, 64, 48)  # 0 frames: make_synthetic.py refuses it
    with pytest.raises(InputError) as error:
        render_scenes([spec], tmp_path, workers=1)
    assert error.value.path == str(tmp_path / f'{spec.name}.log')
    assert error.value.message == (
        'make_synthetic.py, seed 3: make_synthetic: --frames 0: must be at least 1'
    )
