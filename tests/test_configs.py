"""Every config of the repository loads and every component it declares builds."""

import re
import uuid

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch import nn

from mmsparse4d.engine.cfg_options import check_config_keys
from mmsparse4d.models.layers import CORNER_FIXED_POINTS, FIXED_POINT_SETS
from mmsparse4d.registry import DATASETS, HOOKS, METRICS, MODELS, PARAM_SCHEDULERS, VISUALIZERS
from tests.conftest import REPO_ROOT

CONFIG_DIRS = [REPO_ROOT / 'configs', REPO_ROOT / 'projects' / 'sparse4d' / 'configs']
CONFIGS = sorted(path for root in CONFIG_DIRS for path in root.rglob('*.py'))


class ProbeDetector(nn.Module):
    """Stands in for a model where a config declares an optimizer but no model."""

    def __init__(self):
        super().__init__()
        self.img_backbone = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)


def test_configs_are_found():
    assert REPO_ROOT / 'configs' / '_base_' / 'default_runtime.py' in CONFIGS


def _anchors_from_config_or_random(cfg) -> None:
    """The anchor file comes from tools/create_data.py; before it runs, random anchors of
    the configured count stand in (the file's own checks are tested with the bank)."""
    bank = cfg.model.head.instance_bank
    if isinstance(bank.anchor, str) and not (REPO_ROOT / bank.anchor).is_file():
        anchors = np.zeros((bank.num_anchor, 11), np.float32)
        anchors[:, 7] = 1.0
        bank.anchor = anchors


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_config_loads_and_builds(path, tmp_path):
    cfg = Config.fromfile(str(path))
    check_config_keys(cfg)  # every key of a typed dict is an argument of its type
    if 'model' in cfg:
        _anchors_from_config_or_random(cfg)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
        model = MODELS.build(cfg.model) if 'model' in cfg else ProbeDetector()
        if 'optim_wrapper' in cfg:
            optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
            for scheduler in cfg.get('param_scheduler', []):
                PARAM_SCHEDULERS.build(dict(scheduler, optimizer=optim_wrapper))
        for hook in [*cfg.get('default_hooks', {}).values(), *cfg.get('custom_hooks', [])]:
            HOOKS.build(hook)
        if 'visualizer' in cfg:
            VISUALIZERS.build(dict(cfg.visualizer, name=uuid.uuid4().hex, save_dir=str(tmp_path)))
        for split in ('train', 'val', 'test'):
            if f'{split}_dataloader' in cfg:
                DATASETS.build(cfg[f'{split}_dataloader'].dataset)
            evaluator = cfg.get(f'{split}_evaluator')
            for metric in (
                evaluator if isinstance(evaluator, list) else [evaluator] * bool(evaluator)
            ):
                METRICS.build(metric)


def test_schedule_is_the_tao_recipe():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/_base_/schedules/adamw_cosine_tao.py'))
    model = ProbeDetector()
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        schedulers = [
            PARAM_SCHEDULERS.build(dict(s, optimizer=optim_wrapper)) for s in cfg.param_scheduler
        ]
    optimizer = optim_wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW'
    groups = {id(g['params'][0]): g for g in optimizer.param_groups}
    backbone = groups[id(model.img_backbone.weight)]
    head = groups[id(model.head.weight)]
    assert head['weight_decay'] == 1e-3
    assert optim_wrapper.clip_grad_kwargs == dict(max_norm=25, norm_type=2)

    lrs = []
    for _ in range(cfg.max_iters):
        lrs.append((backbone['lr'], head['lr']))
        optim_wrapper.step()
        for scheduler in schedulers:
            scheduler.step()
    base = 1e-4
    assert lrs[0][1] == pytest.approx(base / 3)
    assert lrs[0][0] == pytest.approx(0.2 * base / 3)
    assert lrs[cfg.warmup_iters][1] == pytest.approx(base)
    assert lrs[cfg.warmup_iters][0] == pytest.approx(0.2 * base)
    assert lrs[-1][1] == pytest.approx(1e-3 * base, rel=1e-3)
    assert all(
        a >= b
        for (_, a), (_, b) in zip(
            lrs[cfg.warmup_iters :], lrs[cfg.warmup_iters + 1 :], strict=False
        )
    )
    assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_iters


def test_small_configs_sample_the_corner_points_without_flips():
    """The small synthetic configs (the shipped checkpoint's) sample CORNER_FIXED_POINTS,
    named as a set, train without the horizontal flip and end their schedule at max_iters."""
    for path in (
        'configs/sparse4d/sparse4d_small_480x272_synthetic.py',
        'projects/sparse4d/configs/sparse4d_oae_small_480x272_synthetic.py',
    ):
        cfg = Config.fromfile(str(REPO_ROOT / path))
        assert cfg.model.head.deformable_model.kps_generator.fix_scale == 'v3_corners', path
        assert FIXED_POINT_SETS['v3_corners'] == CORNER_FIXED_POINTS
        augmentation = [
            t
            for t in cfg.train_dataloader.dataset.pipeline
            if t['type'] == 'MultiViewImageAugmentation'
        ]
        assert [t['flip_prob'] for t in augmentation] == [0.0], path
        assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_iters == 2600, path
        assert cfg.train_cfg.val_interval == cfg.train_cfg.max_iters, path


def _differences(a, b, path=''):
    """The dotted keys where two plain config trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for key in sorted(set(a) | set(b))
            for d in _differences(a.get(key), b.get(key), f'{path}.{key}')
        ]
    return [] if a == b else [path]


def test_the_ablation_arms_differ_in_the_outside_in_additions_only():
    """The paper's ablation compares like with like: the outside-in arm is the core arm plus
    the camera embedding and the re-identification branch, and those are the shipped
    outside-in model's (its protocol config's model, anchors included)."""
    root = REPO_ROOT / 'projects/sparse4d/configs'
    core = Config.fromfile(str(root / 'ablation/sparse4d_small_480x272_protocol_core.py'))
    outside_in = Config.fromfile(
        str(root / 'ablation/sparse4d_oae_small_480x272_protocol_outside_in.py')
    )
    shipped = Config.fromfile(str(root / 'sparse4d_oae_small_480x272_protocol.py'))
    assert _differences(core.model.to_dict(), outside_in.model.to_dict()) == [
        '.head.deformable_model.camera_encoder',
        '.head.reid_branch',
    ]
    assert _differences(outside_in.model.to_dict(), shipped.model.to_dict()) == []
    for key in ('train_dataloader', 'param_scheduler', 'optim_wrapper', 'train_cfg'):
        assert core[key] == outside_in[key], key
    # one common start: trained image features, an untrained head (the recipe writes it)
    assert outside_in.load_from == core.load_from == 'work_dirs/ablation_features_start.pth'
    recipe = (REPO_ROOT / 'tools/recipes/train_ablation.sh').read_text()
    assert f'start={core.load_from}' in recipe
    # and its default source of the image features is a checkpoint that ships
    features = re.search(r'features=\$\{FEATURES:-([^}]+)\}', recipe)
    assert features and (REPO_ROOT / features.group(1)).is_file(), features
    assert core.param_scheduler[-1].end == core.train_cfg.max_iters
