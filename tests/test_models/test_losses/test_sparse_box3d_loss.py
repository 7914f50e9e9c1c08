"""Box and quality losses."""

import math

import pytest
import torch

from mmsparse4d.models.losses import SparseBox3DLoss, gaussian_focal_loss


def test_l1_with_weights_and_avg_factor():
    pred, target = torch.zeros(2, 11), torch.ones(2, 11)
    weight = torch.zeros(2, 11)
    weight[:, :3] = 2.0
    losses = SparseBox3DLoss(loss_weight=0.25)(pred, target, weight, avg_factor=2)
    assert losses['loss_box'].item() == pytest.approx(0.25 * 12 / 2)
    assert set(losses) == {'loss_box'}


def test_quality_targets():
    pred = torch.zeros(2, 11)
    pred[:, 7] = 1.0  # heading along +x
    target = pred.clone()
    target[0, 0] = 1.0  # 1 m off: centerness target exp(-1)
    target[1, 7] = -1.0  # opposite heading: yawness target 0
    quality = torch.zeros(2, 2, requires_grad=True)
    losses = SparseBox3DLoss()(pred, target, torch.ones(2, 11), 2, quality)
    expected_cns = -(math.exp(-1) * math.log(0.5) + (1 - math.exp(-1)) * math.log(0.5))
    expected_cns = (expected_cns - math.log(0.5)) / 2  # two rows: exp(-1) and exp(0) = 1
    assert losses['loss_cns'].item() == pytest.approx(expected_cns, rel=1e-6)
    p = torch.tensor(0.5)
    expected_yns = (-(p.log()) * (1 - p) ** 2 - (1 - p).log() * p**2) / 2
    assert losses['loss_yns'].item() == pytest.approx(expected_yns.item(), rel=1e-6)
    (losses['loss_cns'] + losses['loss_yns']).backward()
    assert quality.grad[1, 1] > 0 and quality.grad[0, 1] < 0  # yawness: down for the reversed one


def test_gaussian_focal_loss_is_zero_for_perfect_predictions():
    assert gaussian_focal_loss(
        torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])
    ).item() == pytest.approx(0, abs=1e-6)


def test_symmetric_yaw_regresses_the_yaw_modulo_pi():
    pred = torch.zeros(2, 11)
    pred[:, 7] = 1.0  # heading along +x
    target = pred.clone()
    target[0, 7] = -1.0  # the same box turned by pi
    target[1, 6], target[1, 7] = 1.0, 0.0  # turned by pi / 2: no closer flip
    weight = torch.zeros(2, 11)
    weight[:, 6:8] = 1.0
    plain = SparseBox3DLoss(loss_weight=1.0)(pred, target, weight, 1)['loss_box']
    symmetric_loss = SparseBox3DLoss(loss_weight=1.0, symmetric_yaw=True)
    symmetric = symmetric_loss(pred, target, weight, 1)['loss_box']
    assert plain.item() == pytest.approx(2.0 + 2.0)
    assert symmetric.item() == pytest.approx(0.0 + 2.0)  # only the quarter turn costs
    nearer = SparseBox3DLoss.nearer_yaw_target(pred, target)
    assert nearer[0, 7] == 1.0 and nearer[1, 6] == 1.0
    torch.testing.assert_close(nearer[:, :6], target[:, :6])
    torch.testing.assert_close(nearer[:, 8:], target[:, 8:])


def test_symmetric_yaw_is_set_from_the_config():
    from mmsparse4d.testing import build_untrained_model

    model = build_untrained_model(cfg_options={'model.head.loss_reg.symmetric_yaw': True})
    assert model.head.loss_reg.symmetric_yaw
