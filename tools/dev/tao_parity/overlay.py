"""Import plumbing for running TAO's code: an overlay directory of small stubs placed
first on ``sys.path`` for the imports that only log or belong to training machinery."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

_OVERLAY_INIT = '''\
"""Overlay written by make_tao_parity_fixture.py: this directory first, then TAO's."""
import os as _os

__path__ = [_os.path.dirname(__file__)] + {paths!r}
_orig = {orig!r}
if {run_orig!r} and _os.path.exists(_orig):
    with open(_orig) as _f:
        exec(compile(_f.read(), _orig, 'exec'))
'''

_STUBS = {
    # TAO's logger module configures handlers; only its ``logging`` object is imported.
    'nvidia_tao_pytorch/core/tlt_logging.py': '''\
        """Stub: TAO's logging helper (logs only)."""
        import logging as _logging

        logging = _logging.getLogger('tao_parity_fixture.tao')
        ''',
    # backbone_base asks for the rank before logging a warning; TAO's module needs Lightning.
    'nvidia_tao_pytorch/core/distributed/__init__.py': '"""Stub package."""\n',
    'nvidia_tao_pytorch/core/distributed/comm.py': '''\
        """Stub: single-process answers for TAO's distributed helpers."""


        def get_global_rank():
            return 0


        def get_world_size():
            return 1


        def is_main_process():
            return True
        ''',
    # The compiled CUDA op is not built; the generator runs TAO's grid_sample path instead.
    'nvidia_tao_pytorch/cv/sparse4d/model/ops/deformable_aggregation_ext.py': '''\
        """Stub: TAO's CUDA deformable-aggregation extension is not built here."""


        def _unavailable(*args, **kwargs):
            raise RuntimeError('TAO CUDA extension stub: use use_deformable_func=False')


        deformable_aggregation_forward = _unavailable
        deformable_aggregation_backward = _unavailable
        ''',
    # fvcore's Registry (a name -> callable table) is all TAO imports from fvcore.
    'fvcore/__init__.py': '"""Stub package."""\n',
    'fvcore/common/__init__.py': '"""Stub package."""\n',
    'fvcore/common/registry.py': '''\
        """Stub: a name -> object table with fvcore's register/get interface."""


        class Registry:
            def __init__(self, name):
                self._name = name
                self._obj_map = {}

            def _do_register(self, name, obj):
                if name in self._obj_map:
                    raise KeyError(f'{name} already registered in {self._name}')
                self._obj_map[name] = obj

            def register(self, obj=None):
                if obj is None:

                    def deco(func_or_class):
                        self._do_register(func_or_class.__name__, func_or_class)
                        return func_or_class

                    return deco
                self._do_register(obj.__name__, obj)
                return obj

            def get(self, name):
                if name not in self._obj_map:
                    raise KeyError(f'No object named {name} in {self._name}')
                return self._obj_map[name]

            def __contains__(self, name):
                return name in self._obj_map
        ''',
}

# Only written when the real torchvision cannot be imported: the names timm imports.
_TORCHVISION_ANY = '''\
"""Stub: any attribute is a placeholder class (timm imports these names at import time)."""
from torchvision._stub import make as _make


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)
    return _make(name)
'''
_TORCHVISION_STUBS = {
    'torchvision/_stub.py': '''\
        """Placeholder classes for the torchvision stub."""


        class _Meta(type):
            def __getattr__(cls, name):
                if name.startswith('__'):
                    raise AttributeError(name)
                return _Meta(name, (), {})

            def __call__(cls, *args, **kwargs):
                raise RuntimeError('torchvision stub: not callable')


        def make(name):
            return _Meta(name, (), {})
        ''',
    'torchvision/__init__.py': _TORCHVISION_ANY + "\n__version__ = '0.0+stub'\n",
    'torchvision/datasets.py': _TORCHVISION_ANY,
    'torchvision/utils.py': _TORCHVISION_ANY,
    'torchvision/transforms/__init__.py': _TORCHVISION_ANY,
    'torchvision/transforms/functional.py': _TORCHVISION_ANY,
    'torchvision/models/__init__.py': _TORCHVISION_ANY,
    'torchvision/models/feature_extraction.py': _TORCHVISION_ANY,
    'torchvision/ops/__init__.py': _TORCHVISION_ANY,
    'torchvision/ops/misc.py': '''\
        """Stub: torchvision's FrozenBatchNorm2d (buffers only; not used by TAO's Sparse4D)."""
        import torch
        from torch import nn


        class FrozenBatchNorm2d(nn.Module):
            def __init__(self, num_features, eps=1e-5):
                super().__init__()
                self.eps = eps
                self.register_buffer('weight', torch.ones(num_features))
                self.register_buffer('bias', torch.zeros(num_features))
                self.register_buffer('running_mean', torch.zeros(num_features))
                self.register_buffer('running_var', torch.ones(num_features))
        ''',
}

# (package, run TAO's own __init__?) The overlays make the stub directories visible next to
# TAO's. cv/__init__ is not run: it monkey-patches torch's ONNX export and SDPA and needs
# TAO's third_party package (neither touches this head: its attention runs
# nn.MultiheadAttention with need_weights=True, which does not call SDPA). backbone_v2's
# __init__ imports every backbone family; only its registry is needed.
_OVERLAYS = (
    ('nvidia_tao_pytorch', True),
    ('nvidia_tao_pytorch/core', True),
    ('nvidia_tao_pytorch/cv', False),
    ('nvidia_tao_pytorch/cv/sparse4d', True),
    ('nvidia_tao_pytorch/cv/sparse4d/model', True),
    ('nvidia_tao_pytorch/cv/sparse4d/model/ops', True),
    ('nvidia_tao_pytorch/cv/backbone_v2', False),
)
_BACKBONE_V2_EXTRA = (
    '\nfrom nvidia_tao_pytorch.cv.backbone_v2.registry import BACKBONE_REGISTRY  # noqa: F401\n'
)


def torchvision_importable() -> bool:
    code = 'import torchvision, torchvision.ops.misc'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return (
        subprocess.run([sys.executable, '-c', code], env=env, capture_output=True).returncode == 0
    )


def write_overlay(tmp: Path, tao_src: Path, stub_torchvision: bool) -> list[str]:
    """Write overlay packages and stubs under ``tmp``; return the stub files written."""
    written = []
    for pkg, run_orig in _OVERLAYS:
        d = tmp / pkg
        d.mkdir(parents=True, exist_ok=True)
        orig_dir = tao_src / pkg
        text = _OVERLAY_INIT.format(
            paths=[str(orig_dir)], orig=str(orig_dir / '__init__.py'), run_orig=run_orig
        )
        if pkg.endswith('backbone_v2'):
            text += _BACKBONE_V2_EXTRA
        (d / '__init__.py').write_text(text)
    stubs = dict(_STUBS)
    if stub_torchvision:
        stubs.update(_TORCHVISION_STUBS)
    for rel, text in stubs.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
        written.append(rel)
    return sorted(written)
