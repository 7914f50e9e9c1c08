"""tools/recipes: argument checks run before anything is written."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / 'tools/recipes/synthetic_scenes.sh'


def _run(script, arguments, **env) -> subprocess.CompletedProcess:
    """``bash script arguments`` from the repository root with ``env`` added."""
    return subprocess.run(
        ['bash', str(script), *map(str, arguments)],
        env={**os.environ, 'PYTHON': sys.executable, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize('scenes', ['x', '0', '101', '-3', '1.5'])
def test_bad_scene_count_is_refused_before_any_output(tmp_path, scenes):
    data = tmp_path / 'synthetic'
    result = _run(SCRIPT, [data], SCENES=scenes)
    assert result.returncode == 2
    assert f'SCENES={scenes} is not a number of training scenes in 1..100' in result.stderr
    assert not data.exists()


def test_an_unknown_fine_tuning_start_is_refused_before_any_work(tmp_path):
    work = tmp_path / 'work'
    script = REPO_ROOT / 'tools/recipes/train_protocol.sh'
    result = _run(script, [work, 600], START_ANCHORS='random')
    assert result.returncode == 2
    assert 'START_ANCHORS must be kmeans or learned, got random' in result.stderr
    assert not work.exists()


def test_a_missing_start_checkpoint_is_refused_before_any_work(tmp_path):
    work = tmp_path / 'work'
    script = REPO_ROOT / 'tools/recipes/train_protocol.sh'
    missing = tmp_path / 'nowhere.pth'
    result = _run(script, [work, 600], START_CHECKPOINT=missing)
    assert result.returncode == 2
    assert f'START_CHECKPOINT: no such file: {missing}' in result.stderr
    assert not work.exists()


@pytest.mark.parametrize(
    ('with_work_dir', 'seconds', 'env', 'message'),
    [
        (False, '600', {}, 'usage: train_ablation.sh WORK_DIR SECONDS'),
        (True, 'ten', {}, 'usage: train_ablation.sh WORK_DIR SECONDS'),
        (
            True,
            '600',
            {'SEEDS': '0 one'},
            "SEEDS must be whole numbers separated by spaces, got '0 one'",
        ),
        (True, '600', {'SEEDS': ' '}, 'SEEDS is empty'),
        (True, '600', {'SEEDS': '\t'}, 'SEEDS is empty'),
        (True, '600', {'SEEDS': '0 1 0'}, 'SEEDS repeats a seed (two runs would share a work dir)'),
        (True, '600', {'FEATURES': 'no/such.pth'}, 'FEATURES: no such file: no/such.pth'),
    ],
)
def test_the_ablation_recipe_refuses_bad_arguments_before_any_work(
    tmp_path, with_work_dir, seconds, env, message
):
    work = tmp_path / 'work'
    script = REPO_ROOT / 'tools/recipes/train_ablation.sh'
    result = _run(script, [work, seconds] if with_work_dir else [seconds], **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert not work.exists()


def test_a_run_killed_before_its_time_is_a_failure_not_a_slice_to_resume(tmp_path):
    """A process killed for memory exits 137, as timeout does after its kill: only a slice
    that used its time asks to be run again."""
    killed = tmp_path / 'killed_python'
    killed.write_text('#!/usr/bin/env bash\nkill -9 $$\n')
    killed.chmod(0o755)
    script = REPO_ROOT / 'tools/recipes/train_in_slices.sh'
    result = _run(script, ['any_config.py', tmp_path / 'work', 600], PYTHON=str(killed))
    assert result.returncode == 137
    assert re.search(r'was killed after [0-9]+ s of its 600 \(out of memory\?\)', result.stderr)
    assert 'run again' not in result.stdout
