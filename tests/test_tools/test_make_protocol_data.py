"""tools/make_protocol_data.py: the training seeds' own layouts, rendered once, converted
with class-sized anchors; refusals before any output."""

import pickle
import re

import numpy as np
import pytest

from mmsparse4d.datasets.synthetic.protocol import scene_spec
from mmsparse4d.utils.input_error import InputError
from tests.conftest import run_repo_tool
from tools.make_protocol_data import main as make_protocol_data_main


@pytest.mark.slow
def test_training_scenes_follow_their_seeds_and_render_once(tmp_path):
    arguments = [tmp_path, '--training', '2', '--frames', '4', '--size', '160', '90']
    arguments += ['--workers', '2', '--anchors', '12']
    done = run_repo_tool('make_protocol_data.py', *arguments)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'rendering 2 scenes, 2 at a time' in done.stdout
    train = tmp_path / 'ovpkl/train'
    for seed in (0, 1):
        spec = scene_spec(seed, 4, (160, 90))
        content = pickle.loads((train / f'{spec.name}_infos.pkl').read_bytes())
        assert len(content['infos']) == 4
        assert len(content['infos'][0]['cams']) == spec.num_cameras
        ids = {int(i) for info in content['infos'] for i in info['instance_inds']}
        assert len(ids) == spec.num_objects
        scene = tmp_path / 'raw' / spec.name
        videos = scene.glob('*.h5') if spec.rgb_format == 'h5' else scene.glob('videos/*.mp4')
        assert len(list(videos)) == spec.num_cameras
    anchors = np.load(train / 'anchor_init_kmeans12.npy')
    assert anchors.shape == (12, 11)
    assert len(np.unique(anchors[:, 3:6], axis=0)) > 1  # sized per class
    assert not (tmp_path / 'ovpkl/val').exists()
    again = run_repo_tool('make_protocol_data.py', *arguments)
    assert again.returncode == 0 and 'rendering' not in again.stdout


@pytest.mark.parametrize(
    'arguments, message',
    [
        (['--training', '0'], '--training 0: the protocol has 200 training seeds'),
        (['--training', '201'], '--training 201: the protocol has 200 training seeds'),
        (
            ['--training', '2', '--first-training', '199'],
            '--first-training 199 --training 2: the protocol has 200 training seeds',
        ),
        (
            ['--training', '2', '--first-training', '-1'],
            '--first-training -1 --training 2: the protocol has 200 training seeds',
        ),
        (['--frames', '0'], '--frames must be >= 1, got 0'),
        (['--size', '8', '90'], '--size 8 90: both must be >= 16 pixels'),
    ],
)
def test_bad_arguments_are_refused_before_any_output(tmp_path, arguments, message):
    with pytest.raises(InputError, match=re.escape(message)):
        make_protocol_data_main([str(tmp_path / 'data'), *arguments])
    assert not (tmp_path / 'data').exists()


def test_a_refusal_is_one_line_and_exit_2(tmp_path):
    done = run_repo_tool('make_protocol_data.py', tmp_path / 'data', '--training', '0')
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'make_protocol_data: --training 0: the protocol has 200 training seeds'
    )
    assert not (tmp_path / 'data').exists()
