"""Backbone starts (``init_cfg=dict(type='Pretrained', checkpoint=...)``) checked before a
run builds anything: mmengine would fail on them only inside ``init_weights``, after the
work dir, the logs and the data loaders exist, with a traceback."""

from pathlib import Path

from mmengine.config import Config

from ..utils.input_error import InputError

# Schemes mmengine downloads from; this stack reaches them only where there is a network.
DOWNLOADED = ('http://', 'https://', 'open-mmlab://', 'openmmlab://', 'mmcls://', 'mmpretrain://')
NEEDS_TORCHVISION = 'torchvision://'


def pretrained_inits(node, key: str = 'model'):
    """Yield ``(config key, checkpoint)`` for every ``Pretrained`` init in a config subtree."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        for item in init if isinstance(init, list) else [init]:
            if isinstance(item, dict) and item.get('type') == 'Pretrained':
                yield f'{key}.init_cfg.checkpoint', str(item.get('checkpoint'))
        for name, value in node.items():
            if name != 'init_cfg':
                yield from pretrained_inits(value, f'{key}.{name}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from pretrained_inits(value, f'{key}[{index}]')


def check_pretrained_inits(cfg: Config) -> None:
    """Refuse a ``Pretrained`` init that cannot load here, naming the config key: a
    ``torchvision://`` one (torchvision is not installed: its CUDA wheel breaks the Runner
    and it has no CPU build) and a local file that does not exist. A URL is left to
    mmengine's download (the GPU servers here have no network). Applies with ``load_from``
    and resumes too: mmengine runs ``init_weights`` before loading them."""
    for key, checkpoint in pretrained_inits(cfg.get('model', {})):
        if checkpoint.startswith(NEEDS_TORCHVISION):
            raise InputError(
                f'{key}={checkpoint} needs torchvision, which this stack does not install; '
                "give a local file instead (torchvision's resnet*.pth loads as it is), e.g. "
                f'--cfg-options {key}=resnet50.pth',
                cfg.filename,
            )
        if checkpoint.startswith(DOWNLOADED):
            continue
        if not Path(checkpoint).expanduser().is_file():
            raise InputError(
                f'{key}={checkpoint}: no such file (an ImageNet start for the backbone)',
                cfg.filename,
            )
