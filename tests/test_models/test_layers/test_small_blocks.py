"""SparseBox3DEncoder, AsymmetricFFN, GridMask and the refinement module."""

import pytest
import torch
from mmengine.registry import DefaultScope

from mmsparse4d.models.layers import (
    AsymmetricFFN,
    GridMask,
    SparseBox3DEncoder,
    SparseBox3DRefinementModule,
)
from mmsparse4d.registry import MODELS


def test_encoder_cat_and_add():
    anchors = torch.randn(2, 5, 11)
    cat = SparseBox3DEncoder(embed_dims=(128, 32, 32, 64))
    assert cat.embed_dims == 256 and cat(anchors).shape == (2, 5, 256)
    add = SparseBox3DEncoder(embed_dims=64, mode='add', vel_dims=0)
    assert add(anchors).shape == (2, 5, 64)
    with pytest.raises(ValueError, match="mode 'add' needs equal embed_dims"):
        SparseBox3DEncoder(embed_dims=(64, 32, 32, 64), mode='add')
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        assert isinstance(MODELS.build(dict(type='SparseBox3DEncoder')), SparseBox3DEncoder)


def test_asymmetric_ffn_maps_widths_with_an_identity():
    ffn = AsymmetricFFN(in_channels=512, embed_dims=256, feedforward_channels=1024, ffn_drop=0.0)
    x = torch.randn(2, 7, 512)
    out = ffn(x)
    assert out.shape == (2, 7, 256)
    torch.testing.assert_close(out, ffn.identity_fc(ffn.pre_norm(x)) + ffn.layers(ffn.pre_norm(x)))
    same = AsymmetricFFN(in_channels=32, embed_dims=32, feedforward_channels=64, pre_norm=False)
    assert isinstance(same.identity_fc, torch.nn.Identity)


def test_grid_mask_only_in_training():
    torch.manual_seed(0)
    mask = GridMask(prob=1.0)
    images = torch.ones(2, 3, 64, 96)
    mask.eval()
    assert torch.equal(mask(images), images)
    mask.train()
    out = mask(images)
    dropped = (out == 0).float().mean()
    assert 0.05 < dropped < 0.6 and torch.equal(out[0], out[1])  # one grid for the batch
    assert set(out.unique().tolist()) <= {0.0, 1.0}


def test_refinement_residuals_and_velocity():
    torch.manual_seed(0)
    module = SparseBox3DRefinementModule(embed_dims=32, num_cls=6)
    module.init_weights()
    feature, embed = torch.randn(2, 4, 32), torch.randn(2, 4, 32)
    anchor = torch.randn(2, 4, 11)
    refined, cls, quality = module(feature, anchor, embed, torch.tensor([0.1, 0.2]))
    assert refined.shape == (2, 4, 11) and cls.shape == (2, 4, 6) and quality.shape == (2, 4, 2)
    delta = module.layers(feature + embed)
    torch.testing.assert_close(refined[..., :8], delta[..., :8] + anchor[..., :8])
    torch.testing.assert_close(refined[1, :, 8:], delta[1, :, 8:] / 0.2 + anchor[1, :, 8:])
    assert torch.allclose(
        module.cls_layers[-1].bias, torch.tensor(-4.59512), atol=1e-4
    )  # prior 0.01
    refined, cls, quality = module(
        feature, anchor, embed, torch.tensor([0.1, 0.2]), return_cls=False
    )
    assert cls is None and quality is None


def test_refinement_velocity_per_second_ignores_the_interval():
    torch.manual_seed(0)
    module = SparseBox3DRefinementModule(embed_dims=32, num_cls=6, velocity_per_second=True)
    feature, embed, anchor = torch.randn(1, 4, 32), torch.randn(1, 4, 32), torch.randn(1, 4, 11)
    fast = module(feature, anchor, embed, torch.tensor([1 / 30]))[0]
    slow = module(feature, anchor, embed, torch.tensor([1 / 5]))[0]
    torch.testing.assert_close(fast, slow)
    delta = module.layers(feature + embed)
    torch.testing.assert_close(fast[..., 8:], delta[..., 8:] + anchor[..., 8:])


def test_refinement_without_velocity_residual_replaces_the_anchor_velocity():
    # NVIDIA TAO's refinement: the divided displacement is the velocity.
    torch.manual_seed(0)
    module = SparseBox3DRefinementModule(embed_dims=32, num_cls=6, velocity_residual=False)
    feature, embed, anchor = torch.randn(2, 4, 32), torch.randn(2, 4, 32), torch.randn(2, 4, 11)
    refined = module(feature, anchor, embed, torch.tensor([0.1, 0.2]))[0]
    delta = module.layers(feature + embed)
    torch.testing.assert_close(refined[..., :8], delta[..., :8] + anchor[..., :8])
    torch.testing.assert_close(refined[1, :, 8:], delta[1, :, 8:] / 0.2)


def test_refinement_size_range_bounds_a_carried_box():
    # A box refined again every frame with the same positive size residual (the carried
    # anchor is the last frame's refined box): unbounded it grows e-fold per frame; with
    # size_range it stops at the largest size and every other output stays the same.
    torch.manual_seed(0)
    bounded = SparseBox3DRefinementModule(embed_dims=32, num_cls=6, size_range=(0.05, 20.0))
    free = SparseBox3DRefinementModule(embed_dims=32, num_cls=6)
    free.load_state_dict(bounded.state_dict())
    with torch.no_grad():
        for module in (bounded, free):
            module.layers[-2].weight.zero_()
            module.layers[-2].bias.zero_()
            module.layers[-2].bias[3:6] = 1.0  # log-size residual +1 on w, l, h
    feature, embed = torch.randn(1, 4, 32), torch.randn(1, 4, 32)
    anchor_bounded = anchor_free = torch.zeros(1, 4, 11)
    for _ in range(10):
        anchor_bounded = bounded(feature, anchor_bounded, embed, torch.tensor([0.1]))[0]
        anchor_free = free(feature, anchor_free, embed, torch.tensor([0.1]))[0]
    torch.testing.assert_close(anchor_free[..., 3:6], torch.full((1, 4, 3), 10.0))
    torch.testing.assert_close(
        anchor_bounded[..., 3:6].exp(), torch.full((1, 4, 3), 20.0), rtol=1e-6, atol=0
    )
    keep = [0, 1, 2, 6, 7, 8, 9, 10]
    torch.testing.assert_close(anchor_bounded[..., keep], anchor_free[..., keep])
    # Tiny boxes are lifted to the smallest size.
    small = bounded(feature, torch.full((1, 4, 11), -20.0), embed, torch.tensor([0.1]))[0]
    torch.testing.assert_close(
        small[..., 3:6].exp(), torch.full((1, 4, 3), 0.05), rtol=1e-6, atol=0
    )
    with pytest.raises(ValueError, match='size_range'):
        SparseBox3DRefinementModule(embed_dims=32, size_range=(1.0, 0.5))
