import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch import nn

from mmsparse4d.engine.optimizers import GroupedOptimWrapperConstructor, merge_param_groups
from mmsparse4d.registry import OPTIM_WRAPPER_CONSTRUCTORS


class Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.img_backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1))
        self.head = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))

    def forward(self, x):
        return self.head(self.img_backbone(x).mean(dim=(2, 3)))


CFG = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=1e-2),
    paramwise_cfg=dict(custom_keys=dict(img_backbone=dict(lr_mult=0.2))),
    clip_grad=dict(max_norm=25, norm_type=2),
)


def build(constructor: str, model: nn.Module):
    cfg = copy.deepcopy(CFG)
    cfg['constructor'] = constructor
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        return build_optim_wrapper(model, cfg)


def test_merge_keeps_every_parameter_once_in_order():
    a, b, c = (nn.Parameter(torch.zeros(1)) for _ in range(3))
    groups = [
        dict(params=[a], lr=1.0),
        dict(params=[b], lr=0.5, lr_mult=0.5),
        dict(params=[c], lr=1.0),
    ]
    merged = merge_param_groups(groups)
    assert [g['lr'] for g in merged] == [1.0, 0.5]
    assert merged[0]['params'] == [a, c] and merged[1]['params'] == [b]
    assert merged[1]['lr_mult'] == 0.5


def test_registered_and_groups_by_setting():
    assert OPTIM_WRAPPER_CONSTRUCTORS.get('GroupedOptimWrapperConstructor') is (
        GroupedOptimWrapperConstructor
    )
    model = Detector()
    default = build('DefaultOptimWrapperConstructor', model).optimizer
    grouped = build('GroupedOptimWrapperConstructor', model).optimizer
    assert len(default.param_groups) == len(list(model.parameters()))
    assert len(grouped.param_groups) == 2
    lrs = sorted(g['lr'] for g in grouped.param_groups)
    assert lrs == pytest.approx([2e-3, 1e-2])
    backbone = {id(p) for p in model.img_backbone.parameters()}
    for group in grouped.param_groups:
        inside = {id(p) in backbone for p in group['params']}
        assert len(inside) == 1  # a group is all backbone or all head
    assert sum(len(g['params']) for g in grouped.param_groups) == len(list(model.parameters()))


def test_same_updates_as_one_group_per_parameter():
    torch.manual_seed(0)
    model_a = Detector()
    model_b = copy.deepcopy(model_a)
    wrapper_a = build('DefaultOptimWrapperConstructor', model_a)
    wrapper_b = build('GroupedOptimWrapperConstructor', model_b)
    for step in range(3):
        x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(step))
        for model, wrapper in ((model_a, wrapper_a), (model_b, wrapper_b)):
            wrapper.update_params(model(x).square().sum())
    for pa, pb in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
