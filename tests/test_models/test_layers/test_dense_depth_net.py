"""The auxiliary depth branch."""

import pytest
import torch

from mmsparse4d.models.layers import DenseDepthNet


def test_depth_scales_with_focal_and_loss_uses_valid_pixels():
    net = DenseDepthNet(embed_dims=4, num_depth_layers=2, equal_focal=100.0, loss_weight=1.0)
    for layer in net.depth_layers:
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.constant_(layer.bias, 0.0)  # exp(0) = 1 before the focal scale
    maps = [torch.randn(2, 4, 8, 12), torch.randn(2, 4, 4, 6), torch.randn(2, 4, 2, 3)]
    preds = net(maps, torch.tensor([100.0, 300.0]))
    assert len(preds) == 2 and preds[0].shape == (2, 1, 8, 12)
    assert preds[0][0].unique().tolist() == [1.0] and preds[0][1].unique().tolist() == [3.0]
    targets = [torch.full((2, 8, 12), -1.0), torch.full((2, 4, 6), 2.0)]
    targets[0][0, 0, 0] = 4.0
    # level 0: |1 - 4| on one pixel; level 1: |1 - 2| and |3 - 2| on every pixel.
    assert net.loss(preds, targets).item() == pytest.approx((3.0 + 1.0) / 2)


def test_non_finite_predictions_are_left_out_without_nan_gradients():
    net = DenseDepthNet(embed_dims=4, num_depth_layers=1, loss_weight=1.0)
    pred = torch.tensor([[[[1.0, float('inf')], [float('nan'), 2.0]]]], requires_grad=True)
    target = torch.tensor([[[4.0, 4.0], [4.0, -1.0]]])
    loss = net.loss([pred], [target])
    assert loss.item() == pytest.approx(3.0)  # only the finite, valid pixel: |1 - 4|
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad.flatten().tolist() == [-1.0, 0.0, 0.0, 0.0]
