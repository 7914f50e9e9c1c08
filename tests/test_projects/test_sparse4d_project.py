"""The outside-in project's modules, loaded as a third party would load them."""

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmsparse4d.registry import MODELS


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    config = tmp_path_factory.mktemp('cfg') / 'project.py'
    imports = "imports=['projects.sparse4d.sparse4d'], allow_failed_imports=False"
    config.write_text(f'custom_imports = dict({imports})\n')
    Config.fromfile(str(config))

    def build(cfg):
        with DefaultScope.overwrite_default_scope('mmsparse4d'):
            return MODELS.build(cfg)

    return build


def test_names_do_not_clash_with_the_core(project):
    import mmsparse4d.models  # noqa: F401

    for name in (
        'VisibilityNet',
        'OcclusionAwareEmbedding',
        'BNNeck',
        'LabelSmoothIDLoss',
        'VisibilityLoss',
    ):
        assert MODELS.get(name).__module__.startswith('projects.sparse4d')


def test_visibility_weighted_fusion(project):
    net = project(dict(type='VisibilityNet', embed_dims=16))
    features = torch.randn(2, 5, 3, 16)
    visibility = net(features)
    assert visibility.shape == (2, 5, 3) and ((visibility > 0) & (visibility < 1)).all()
    fusion = project(dict(type='OcclusionAwareEmbedding'))
    mask = torch.ones(2, 5, 3, dtype=torch.bool)
    mask[0, 0, 1:] = False  # seen by the first camera only
    mask[0, 1] = False  # seen by none
    fused = fusion(features, visibility, mask)
    torch.testing.assert_close(fused[0, 0], features[0, 0, 0])
    assert (fused[0, 1] == 0).all()
    weights = torch.softmax(visibility[1, 2], dim=-1)
    torch.testing.assert_close(fused[1, 2], (weights[:, None] * features[1, 2]).sum(0))


def test_bnneck_and_losses(project):
    neck = project(dict(type='BNNeck', embed_dims=16, num_ids=7))
    neck.init_weights()
    logits, normalised = neck(torch.randn(10, 16))
    assert logits.shape == (10, 7) and normalised.shape == (10, 16)
    assert not neck.bn.bias.requires_grad
    id_loss = project(dict(type='LabelSmoothIDLoss'))
    targets = torch.tensor([0, 1, 2, 3, 4, 5, 6, -1, -1, 2])
    assert id_loss(logits, targets) > 0
    assert id_loss(logits, torch.full((10,), -1)).item() == 0
    vis_loss = project(dict(type='VisibilityLoss'))
    target = torch.tensor([[1.0, 0.0]])
    assert vis_loss(torch.tensor([[0.999999, 0.000001]]), target).item() < 1e-4
    assert vis_loss(
        torch.tensor([[0.2, 0.9]]), target, torch.tensor([[1.0, 0.0]])
    ).item() == pytest.approx(-torch.log(torch.tensor(0.2)).item(), rel=1e-5)
