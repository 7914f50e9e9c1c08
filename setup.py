"""Build and install mmsparse4d with its compiled extension ``mmsparse4d._ext``.

The extension is built with CUDA when both a CUDA build of torch and nvcc are present
(no GPU is needed at build time), and CPU-only otherwise. Environment switches:

* ``FORCE_CUDA=1``: fail instead of building CPU-only when CUDA cannot be built.
  CUDA needs a CUDA build of torch and nvcc 12.4 or newer (``__maxnreg__``; built and
  tested with 13.0).
* ``FORCE_CUDA=0``: build CPU-only even where CUDA could be built.
* ``TORCH_CUDA_ARCH_LIST``: the GPU architectures to compile for (torch's own variable).
* ``MAX_JOBS``: parallel compile jobs (torch's own variable).
"""

import os
import re
import subprocess
from glob import glob

from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join('ops', 'csrc')


def read_version() -> str:
    namespace: dict = {}
    with open(os.path.join(HERE, 'mmsparse4d', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


# The kernels cap registers per kernel with __maxnreg__, which nvcc has from 12.4.
MIN_NVCC = (12, 4)


def nvcc_version() -> tuple[int, int] | None:
    """(major, minor) of $CUDA_HOME/bin/nvcc, None where it cannot be run or read."""
    try:
        out = subprocess.run(
            [os.path.join(CUDA_HOME, 'bin', 'nvcc'), '--version'],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except OSError:
        return None
    match = re.search(r'release (\d+)\.(\d+)', out)
    return (int(match[1]), int(match[2])) if match else None


def cuda_build_requested() -> bool:
    """Decide CPU-only or CUDA, loudly: the choice is printed, and FORCE_CUDA=1 fails."""
    import torch

    force = os.environ.get('FORCE_CUDA')
    cuda_sources = glob(os.path.join(CSRC, 'cuda', '*.cu'))
    reasons = []
    if torch.version.cuda is None:
        reasons.append(f'torch {torch.__version__} is a CPU build')
    if CUDA_HOME is None:
        reasons.append('nvcc was not found (set CUDA_HOME)')
    else:
        version = nvcc_version()
        if version is None:
            reasons.append(f'{CUDA_HOME}/bin/nvcc --version did not run or name a release')
        elif version < MIN_NVCC:
            reasons.append(
                f'{CUDA_HOME}/bin/nvcc is CUDA {version[0]}.{version[1]}; the kernels need '
                f'{MIN_NVCC[0]}.{MIN_NVCC[1]} or newer'
            )
    if not cuda_sources:
        reasons.append(f'{CSRC}/cuda holds no .cu sources')
    if force == '0':
        reasons.append('FORCE_CUDA=0')
    if reasons:
        if force == '1':
            raise RuntimeError('FORCE_CUDA=1 but CUDA cannot be built: ' + '; '.join(reasons))
        print('mmsparse4d: building the extension for CPU only: ' + '; '.join(reasons))
        return False
    print(
        f'mmsparse4d: building the extension with CUDA {torch.version.cuda} '
        f'(TORCH_CUDA_ARCH_LIST={os.environ.get("TORCH_CUDA_ARCH_LIST", "torch default")})'
    )
    return True


def make_extension():
    sources = sorted(glob(os.path.join(CSRC, '*.cpp')) + glob(os.path.join(CSRC, 'cpu', '*.cpp')))
    cxx_flags = ['-O3', '-fopenmp', '-std=c++20']
    if cuda_build_requested():
        sources += sorted(glob(os.path.join(CSRC, 'cuda', '*.c[pu]*')))
        nvcc_flags = ['-O3', '-std=c++20', '--expt-relaxed-constexpr', '-lineinfo']
        return CUDAExtension(
            'mmsparse4d._ext',
            sources,
            define_macros=[('WITH_CUDA', None)],
            extra_compile_args={'cxx': cxx_flags, 'nvcc': nvcc_flags},
            extra_link_args=['-fopenmp'],
        )
    return CppExtension(
        'mmsparse4d._ext',
        sources,
        extra_compile_args={'cxx': cxx_flags},
        extra_link_args=['-fopenmp'],
    )


setup(
    name='mmsparse4d',
    version=read_version(),
    description='Sparse4D v3 multi-camera 3D detection and tracking for static camera networks',
    packages=find_packages(include=['mmsparse4d', 'mmsparse4d.*']),
    python_requires='>=3.10',
    ext_modules=[make_extension()],
    cmdclass={'build_ext': BuildExtension},
    zip_safe=False,
)
