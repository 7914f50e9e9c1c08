"""Keys and shapes of TAO's full model as a TAO Lightning checkpoint names them."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import torch

from .settings import CLASSES, CRITERION_PREFIX
from .tao_config import tao_config


def tao_full_keys(tmp: Path) -> dict:
    """Keys and shapes of Sparse4DPlModel's state_dict for the spec's full model.

    Sparse4DPlModel.__init__ builds ``self.model = Sparse4D(spec)`` and then
    ``self.criterion = SetCriterion(spec.model, self.model.head.instance_bank)``; a Lightning
    checkpoint's ``state_dict`` is that module tree's state_dict. The container below holds
    the same two children under the same names (LightningModule itself adds no state).
    """
    from torch import nn

    s4d = importlib.import_module('nvidia_tao_pytorch.cv.sparse4d.model.sparse4d')
    crit = importlib.import_module('nvidia_tao_pytorch.cv.sparse4d.model.criterion')
    bb = importlib.import_module('nvidia_tao_pytorch.cv.sparse4d.model.backbone.resnet')
    reg = importlib.import_module('nvidia_tao_pytorch.cv.sparse4d.model.backbone.registry')
    registry = reg.SPARSE4D_BACKBONE_REGISTRY
    notes = {}
    if 'resnet_50' not in registry:
        # Not registered at this TAO commit (TAO 7.0.1 adds it). The same ResNet_FPN class with
        # the standard ResNet-50 stage depths; only layer3's block count differs from R101.
        from timm.models.resnet import Bottleneck

        def resnet_50(out_indices=(0, 1, 2, 3), **kwargs):
            return bb.ResNet_FPN(
                out_channels=[256, 512, 1024, 2048],
                block=Bottleneck,
                layers=[3, 4, 6, 3],
                return_idx=list(out_indices),
                **kwargs,
            )

        registry.register(resnet_50)
        notes['resnet_50'] = (
            'not registered at this TAO commit; built as ResNet_FPN(Bottleneck, [3, 4, 6, 3]), '
            'the same class resnet_101 uses'
        )

    anchor_path = tmp / 'anchor_zeros_900x11.npy'
    np.save(anchor_path, np.zeros((900, 11), dtype=np.float32))

    class PlModelTree(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.model = s4d.Sparse4D(cfg)
            self.criterion = crit.SetCriterion(cfg.model, self.model.head.instance_bank)

    variants = {}
    for backbone in ('resnet_101', 'resnet_50'):
        for cam in (False, True):
            cfg = tao_config(
                anchor=str(anchor_path),
                num_anchor=900,
                num_temp_instances=600,
                num_decoder=6,
                num_single_frame_decoder=1,
                num_output=300,
                max_num_cams=20,
                use_camera_embed=cam,
                use_deformable_func=True,
                backbone=backbone,
            )
            with torch.device('meta'):
                tree = PlModelTree(cfg)
            name = f'{backbone}/use_camera_embed={str(cam).lower()}'
            variants[name] = [[k, list(v.shape)] for k, v in tree.state_dict().items()]
            del tree

    base_name = 'resnet_101/use_camera_embed=false'
    base = variants[base_name]
    base_map = {k: s for k, s in base}
    diffs = {}
    for name, keys in variants.items():
        if name == base_name:
            continue
        cur = {k: s for k, s in keys}
        diffs[name] = {
            'removed': [k for k, _ in base if k not in cur],
            'added': [[k, s] for k, s in keys if k not in base_map],
            'reshaped': [[k, s] for k, s in keys if k in base_map and base_map[k] != s],
        }
    return {
        'about': (
            'State_dict keys and shapes of a TAO Sparse4D Lightning checkpoint (no values). '
            f'"base" is {base_name} in state_dict order; each other variant has the keys of '
            'base minus "removed" plus "added", with the shapes in "reshaped" changed. '
            'criterion.instance_bank.* are the same tensors as model.head.instance_bank.*.'
        ),
        'config': {
            'num_anchor': 900,
            'num_temp_instances': 600,
            'num_decoder': 6,
            'num_single_frame_decoder': 1,
            'max_num_cams': 20,
            'num_classes': len(CLASSES),
            'classes': list(CLASSES),
            'use_grid_mask': True,
            'depth_branch.num_depth_layers': 3,
            'reid': 'use_reid_sampling false, reid_dims 0 (spec default): no visibility_net, '
            'no bnneck',
        },
        'notes': notes,
        'base_variant': base_name,
        'base': base,
        'variants': diffs,
        'criterion_keys': [k for k, _ in base if k.startswith(CRITERION_PREFIX)],
        'prefixes': sorted({'.'.join(k.split('.')[:2]) for k, _ in base}),
    }
