"""What the tools import before they refuse bad arguments: not the model."""

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# Runs a tool's main as `python tools/TOOL ARGS` would, then lists the heavy packages that
# were imported by the time it exited.
PROBE = """
import runpy, sys
sys.argv = [{tool!r}, *{args!r}]
try:
    runpy.run_path({tool!r}, run_name='__main__')
except SystemExit as done:
    code = done.code
heavy = ('mmdet.models', 'mmdet3d.structures', 'mmsparse4d.models', 'mmsparse4d.engine.hooks')
print(code, sorted(m for m in heavy if m in sys.modules))
"""


@pytest.mark.parametrize(
    'tool, args, message',
    [
        ('tools/train.py', ['missing_config.py'], 'config file not found'),
        ('tools/test.py', ['missing_config.py', 'missing.pth'], 'config file not found'),
        ('tools/infer.py', ['missing_config.py', 'm.pth', 'scene', '--out-dir', 'o'], 'config not'),
        ('tools/export.py', ['missing_config.py', 'm.pth', '--out', 'o.onnx'], 'config not found'),
        ('tools/benchmark.py', ['missing_config.py', '--device', 'cpu'], 'config not found'),
    ],
)
def test_a_refusal_comes_before_the_model_zoo_is_imported(tool, args, message):
    # The registries import the engine's hooks, loops and optimizers on first lookup, and
    # infer.py, export.py and benchmark.py import the tracker, the exporter and the benchmark
    # after their checks: a refusal costs train.py and test.py torch and mmengine (about
    # 3.5 s on a 2-core machine; 5 s with the model zoo), infer.py 1 s (9 s).
    done = subprocess.run(
        [sys.executable, '-c', PROBE.format(tool=tool, args=args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert done.stdout.strip().splitlines()[-1] == '2 []', done.stdout + done.stderr
    assert f'missing_config.py: {message}' in done.stderr
