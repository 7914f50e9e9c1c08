"""tools/evaluate_synthetic.py: seed choice and refusals, and one whole run on the CPU."""

import json

import numpy as np
import pytest

from mmsparse4d.datasets.synthetic.protocol import VALIDATION_SEEDS, scene_spec
from tests.conftest import REPO_ROOT, run_repo_tool

CONFIG = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py'
CHECKPOINT = REPO_ROOT / 'checkpoints/sparse4d_oae_small_480x272_synthetic-47bb6a98.pth'


@pytest.mark.parametrize(
    'seeds, message',
    [
        (['3'], '--seeds: 3 is a training seed'),
        ([str(VALIDATION_SEEDS[0])], f'--seeds: {VALIDATION_SEEDS[0]} is a validation seed'),
        (['1000001', '1000001'], 'repeats a seed'),
    ],
)
def test_tuned_or_repeated_seeds_are_refused_before_any_work(tmp_path, seeds, message):
    done = run_repo_tool(
        'evaluate_synthetic.py', CONFIG, CHECKPOINT, '--work-dir', tmp_path / 'w', '--seeds', *seeds
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('evaluate_synthetic: --seeds: '), lines
    assert message in lines[0]
    assert not (tmp_path / 'w').exists()


def test_a_missing_checkpoint_is_named(tmp_path):
    done = run_repo_tool(
        'evaluate_synthetic.py', CONFIG, tmp_path / 'none.pth', '--work-dir', tmp_path / 'w'
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f'evaluate_synthetic: {tmp_path / "none.pth"}: no such file'


@pytest.mark.slow
def test_a_run_scores_each_scene_and_summarises(tmp_path):
    seeds = [1_000_007]  # an mp4 scene (the h5 path: test_synthetic_protocol, test_scene_scores)
    done = run_repo_tool(
        'evaluate_synthetic.py',
        CONFIG,
        CHECKPOINT,
        '--work-dir',
        tmp_path,
        '--seeds',
        *seeds,
        '--frames',
        '2',
        '--workers',
        '2',
        '--score-threshold',  # passed on to tools/infer.py (which refuses one below 0.2)
        '0.25',
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['role'] == 'test' and summary['seeds'] == seeds
    assert [s['rgb_format'] for s in summary['scenes']] == ['mp4']
    for scene, seed in zip(summary['scenes'], seeds, strict=True):
        spec = scene_spec(seed, num_frames=2)
        assert (scene['num_cameras'], scene['num_objects']) == (spec.num_cameras, spec.num_objects)
        assert 0 <= scene['HOTA'] <= 100 and 0 <= scene['mAP'] <= 1 and scene['frames'] == 2
        # Zeros for classes left without predictions can only lower the mean over classes.
        every = np.mean([c['HOTA'] for c in scene['per_class'].values()])
        assert scene['HOTA_every_class'] == pytest.approx(every) and every <= scene['HOTA'] + 1e-9
        assert set(scene['misses']) == {
            'rows',
            'missed',
            'confused',
            'far_rows',
            'far_missed',
            'by_cameras',
        }
    hota = summary['scenes'][0]['HOTA']
    assert summary['aggregate']['HOTA'] == {'mean': hota, 'std': 0.0, 'min': hota, 'max': hota}
    assert '| seed | cameras | objects | video |' in done.stdout
