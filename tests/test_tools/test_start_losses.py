"""tools/analysis_tools/start_losses.py on the tiny model and a converted scene (CPU)."""

import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse4d.registry import MODELS
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'tools' / 'analysis_tools'))
from start_losses import parse_args, start_losses  # noqa: E402

CONFIG = REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'
LEFT_OUT = 'head.instance_bank.instance_feature'


def test_same_weights_give_the_same_losses_and_gaps_are_listed(converted, tmp_path):
    result, data_root = converted
    anchors = np.load(result.anchors)
    np.save(tmp_path / 'anchors.npy', np.concatenate([anchors, anchors]))
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(
        {
            'train_dataloader.dataset.data_root': str(data_root),
            'train_dataloader.dataset.ann_file': str(result.pickles[0].parent),
            'model.head.instance_bank.anchor': str(tmp_path / 'anchors.npy'),
        }
    )
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        state = MODELS.build(cfg.model).state_dict()
    torch.save({'state_dict': state}, tmp_path / 'full.pth')
    torch.save(
        {'state_dict': {k: v for k, v in state.items() if k != LEFT_OUT}}, tmp_path / 'gap.pth'
    )
    first, missing = start_losses(cfg, tmp_path / 'full.pth', batches=2, batch_size=2)
    again, _ = start_losses(cfg, tmp_path / 'full.pth', batches=2, batch_size=2)
    assert missing == [] and first == again  # dropout and denoising drawn alike
    assert {'loss_cls_0', 'loss_box_0'} <= set(first)
    _, missing = start_losses(cfg, tmp_path / 'gap.pth', batches=2, batch_size=2)
    assert missing == [LEFT_OUT]
    # --amp bf16: the forward under the CPU's autocast, so every term is finite and rounded
    # otherwise than in float32 (equal values would mean autocast did nothing).
    rounded, _ = start_losses(cfg, tmp_path / 'full.pth', batches=2, batch_size=2, amp='bf16')
    assert set(rounded) == set(first)
    assert all(np.isfinite(value) for value in rounded.values())
    assert rounded != first
    assert parse_args([str(CONFIG), 'x.pth', '--amp', 'bf16']).amp == 'bf16'
    with pytest.raises(InputError, match='--batches and --batch-size must be >= 1'):
        parse_args([str(CONFIG), 'x.pth', '--batches', '0'])
