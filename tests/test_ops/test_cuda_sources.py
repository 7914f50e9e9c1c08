"""The CUDA kernels' source compiles for every architecture a build may target (needs nvcc,
no GPU): the forward's asynchronous copies exist from sm_80 only, and a build for an older
GPU (a T4 is sm_75) must take the register loads instead, not fail in ptxas."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

KERNELS = REPO_ROOT / 'ops/csrc/cuda/msda_kernels.cu'
NVCC = shutil.which('nvcc')

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NVCC is None, reason='needs nvcc (the CUDA toolkit)'),
]


def nvcc(arch: str, output: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [NVCC, f'-arch={arch}', '-O3', '-std=c++17', '--expt-relaxed-constexpr']
    command += ['-I', str(KERNELS.parent), *flags, str(KERNELS), '-o', str(output)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_kernels_compile_for_an_architecture_without_async_copies(tmp_path):
    # -c runs ptxas, which refuses cp.async below sm_80 ("requires .target sm_80").
    result = nvcc('sm_75', tmp_path / 'msda_sm75.o', '-c')
    assert result.returncode == 0, result.stderr[-2000:]


def test_kernels_use_async_copies_on_hopper(tmp_path):
    result = nvcc('sm_90', tmp_path / 'msda_sm90.ptx', '-ptx')
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'cp.async.cg.shared.global' in (tmp_path / 'msda_sm90.ptx').read_text()
