"""Arguments the tools cannot use are refused in one line, exit status 2, before any work or
output: outputs under a file, counts and sizes that mean nothing, a device that is not
there, a file that is not what the argument needs."""

import pytest
import torch

from tests.conftest import REPO_ROOT, run_repo_tool

CONFIG = REPO_ROOT / 'projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py'
CHECKPOINT = REPO_ROOT / 'checkpoints/sparse4d_oae_small_480x272_synthetic-47bb6a98.pth'


def refused(tool: str, *args) -> str:
    done = run_repo_tool(tool, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert 'Traceback' not in done.stderr
    return lines[0]


@pytest.fixture
def afile(tmp_path):
    path = tmp_path / 'afile'
    path.write_text('')
    return path


def test_outputs_under_a_file(tmp_path, afile):
    cases = [
        (
            ['export.py', CONFIG, CHECKPOINT, '--out', afile / 'm.onnx'],
            f'--out {afile / "m.onnx"}: {afile} is a file, not a folder',
        ),
        (
            ['model_converters/tao_to_mmsparse4d.py', CHECKPOINT, CONFIG, afile / 't.pth'],
            f'OUT {afile / "t.pth"}: {afile} is a file, not a folder',
        ),
        (
            ['benchmark.py', CONFIG, '--device', 'cpu', '--json', afile / 'b.json'],
            f'--json {afile / "b.json"}: {afile} is a file, not a folder',
        ),
        (
            ['evaluate_synthetic.py', CONFIG, CHECKPOINT, '--work-dir', afile / 'w'],
            f'--work-dir {afile / "w"}: {afile} is a file, not a folder',
        ),
    ]
    for args, message in cases:
        assert refused(*args).endswith(message), args


def test_counts_sizes_and_devices_that_mean_nothing(tmp_path, h5_scene):
    cases = [
        (
            ['create_data.py', h5_scene[0], '--out', tmp_path / 'o', '--anchors', '-5'],
            '--anchors -5',
        ),
        (['create_data.py', h5_scene[0], '--out', tmp_path / 'o', '--min-overlap', '-1'], '0 to 1'),
        (['benchmark.py', CONFIG, '--device', 'cpu', '--size', '0', '-5'], '--size 0 -5'),
        (
            ['infer.py', CONFIG, CHECKPOINT, h5_scene[0], '--out-dir', tmp_path / 'i']
            + ['--scene-id', '-3'],
            '--scene-id -3: must be >= 0',
        ),
        (
            ['export.py', CONFIG, CHECKPOINT, '--out', tmp_path / 'm.onnx']
            + ['--verify-cams', '99'],
            '--verify-cams 99: the model takes at most 20 cameras',
        ),
        (
            ['evaluate_synthetic.py', CONFIG, CHECKPOINT, '--work-dir', tmp_path / 'e']
            + ['--cfg-options', 'model.nope=1'],
            "model has no key 'nope'",
        ),
    ]
    if not torch.cuda.is_available():
        cases.append(
            (
                ['infer.py', CONFIG, CHECKPOINT, h5_scene[0], '--out-dir', tmp_path / 'i']
                + ['--device', 'cuda'],
                '--device cuda: no CUDA device is available',
            )
        )
    for args, message in cases:
        assert message in refused(*args), args
    assert not any((tmp_path / name).exists() for name in ('o', 'i', 'm.onnx', 'e'))


def test_a_file_that_is_not_onnx(tmp_path, h5_scene):
    fake = tmp_path / 'model.onnx'
    fake.write_bytes(b'\x00not protobuf' * 50)
    line = refused(
        'infer.py',
        CONFIG,
        fake,
        h5_scene[0],
        '--out-dir',
        tmp_path / 'i',
        '--backend',
        'onnxruntime',
    )
    assert f'{fake}: not an ONNX file' in line
