"""Config inheritance, custom_imports from an outside package, and unknown type names."""

import sys
import textwrap
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse4d.registry import MODELS
from tests.conftest import REPO_ROOT

SCHEDULE = REPO_ROOT / 'configs/_base_/schedules/adamw_cosine_tao.py'


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_derived_config_swaps_one_component(tmp_path):
    write(
        tmp_path / 'base.py',
        f"""
        _base_ = ['{SCHEDULE}']
        model = dict(type='mmdet.ResNet', depth=18, out_indices=(3,), norm_eval=False)
        """,
    )
    derived = write(
        tmp_path / 'derived.py',
        """
        _base_ = ['./base.py']
        model = dict(type='mmdet.ResNetV1d')
        optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9))
        """,
    )
    cfg = Config.fromfile(derived)
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'ResNetV1d'
    assert model.depth == 18  # inherited from the base, only the type was swapped
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.01, momentum=0.9)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=25, norm_type=2)  # kept from _base_
    assert cfg.param_scheduler[0].type == 'LinearLR'


def test_custom_imports_registers_an_outside_package(tmp_path, monkeypatch):
    package = f'third_party_{uuid.uuid4().hex[:8]}'
    (tmp_path / package).mkdir()
    write(
        tmp_path / package / '__init__.py',
        """
        from torch import nn

        from mmsparse4d.registry import MODELS


        @MODELS.register_module()
        class ThirdPartyScale(nn.Module):
            def __init__(self, factor):
                super().__init__()
                self.factor = factor

            def forward(self, x):
                return x * self.factor
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = write(
        tmp_path / 'uses_third_party.py',
        f"""
        custom_imports = dict(imports=['{package}'], allow_failed_imports=False)
        model = dict(type='ThirdPartyScale', factor=3.0)
        """,
    )
    assert package not in sys.modules
    cfg = Config.fromfile(config)
    assert package in sys.modules
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        model = MODELS.build(cfg.model)
    assert type(model).__module__ == package
    assert model(torch.ones(2)).tolist() == [3.0, 3.0]


def test_missing_custom_import_fails_loudly(tmp_path):
    config = write(
        tmp_path / 'missing.py',
        "custom_imports = dict(imports=['no_such_package_xyz'], allow_failed_imports=False)\n",
    )
    with pytest.raises(ImportError, match='no_such_package_xyz'):
        Config.fromfile(config)


def test_unknown_type_names_the_registry_and_the_name():
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        with pytest.raises(KeyError) as error:
            MODELS.build(dict(type='Sparse4DHeadTypo'))
    message = str(error.value)
    assert 'Sparse4DHeadTypo' in message
    assert 'mmsparse4d::model' in message
