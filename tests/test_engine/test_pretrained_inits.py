"""Backbone starts that cannot load here are refused before a run builds anything."""

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse4d.engine.cli import make_train_config
from mmsparse4d.engine.pretrained_inits import check_pretrained_inits, pretrained_inits
from mmsparse4d.registry import MODELS
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

R50 = REPO_ROOT / 'configs/sparse4d/sparse4d_r50_960x544_synthetic.py'
KEY = 'model.img_backbone.init_cfg.checkpoint'


def _with_start(tmp_path, checkpoint: str):
    """A user's config giving the R50 config an ImageNet start."""
    config = tmp_path / 'mine.py'
    config.write_text(
        f"_base_ = ['{R50}']\n"
        f"model = dict(img_backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', "
        f"checkpoint='{checkpoint}')))\n"
    )
    return config


def test_the_960x544_configs_start_from_scratch_offline():
    cfg = Config.fromfile(str(R50))
    assert list(pretrained_inits(cfg.model)) == []
    check_pretrained_inits(cfg)


def test_an_unloadable_start_is_named_before_any_work(tmp_path):
    with pytest.raises(InputError, match=f'{KEY}=torchvision://resnet50 needs torchvision'):
        make_train_config([str(_with_start(tmp_path, 'torchvision://resnet50'))])
    missing = tmp_path / 'resnet50.pth'
    with pytest.raises(InputError, match=f'{KEY}={missing}: no such file'):
        make_train_config([str(_with_start(tmp_path, str(missing)))])
    assert not (tmp_path / 'work_dirs').exists()
    # A URL is left to mmengine's download; nested and listed inits are found too.
    cfg = Config.fromfile(str(_with_start(tmp_path, 'https://example.org/resnet50.pth')))
    check_pretrained_inits(cfg)
    tree = {'a': [{'init_cfg': [{'type': 'Kaiming'}, {'type': 'Pretrained', 'checkpoint': 'x'}]}]}
    assert list(pretrained_inits(tree)) == [('model.a[0].init_cfg.checkpoint', 'x')]


def test_a_local_start_loads(tmp_path):
    # A torchvision-layout ResNet-50 state dict (as its resnet50-*.pth holds it) loads into
    # the backbone by name: here the backbone's own weights, saved and loaded back.
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        backbone = MODELS.build(Config.fromfile(str(R50)).model.img_backbone)
    state = {k: v for k, v in backbone.state_dict().items() if 'num_batches' not in k}
    state['fc.weight'] = torch.zeros(1000, 2048)  # the classifier the backbone lacks
    torch.save(state, tmp_path / 'resnet50.pth')
    cfg = Config.fromfile(str(_with_start(tmp_path, str(tmp_path / 'resnet50.pth'))))
    check_pretrained_inits(cfg)
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        started = MODELS.build(cfg.model.img_backbone)
    started.init_weights()
    for name, value in started.state_dict().items():
        if 'num_batches' not in name:
            assert torch.equal(value, state[name]), name
