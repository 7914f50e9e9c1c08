"""The focal loss trains background queries as negatives."""

import numpy as np
import torch

from mmsparse4d.models.losses import FocalLoss


def reference(logits, targets, gamma=2.0, alpha=0.25):
    p = 1 / (1 + np.exp(-logits))
    k = logits.shape[1]
    one_hot = np.zeros_like(logits)
    for i, t in enumerate(targets):
        if 0 <= t < k:
            one_hot[i, t] = 1
    pt = np.where(one_hot == 1, p, 1 - p)
    at = np.where(one_hot == 1, alpha, 1 - alpha)
    return float((-at * (1 - pt) ** gamma * np.log(pt)).sum() / len(logits))


def test_matches_the_formula_with_background_and_dn_negatives():
    logits = torch.randn(8, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    targets = torch.tensor([0, 5, 6, -1, -3, 2, 6, 3])  # 6 = background, -3 = dn negative
    loss = FocalLoss()(logits, targets)
    assert loss.item() == pytest_approx(reference(logits.numpy(), targets.numpy()))


def test_background_rows_are_pushed_down():
    logits = torch.full((2, 3), 2.0, requires_grad=True)  # confident on every class
    FocalLoss()(logits, torch.tensor([3, -3])).backward()
    assert (logits.grad > 0).all()  # gradient descent lowers every logit of background rows


def test_weights_and_avg_factor():
    logits = torch.randn(4, 3)
    targets = torch.tensor([0, 1, 3, 2])
    full = FocalLoss(loss_weight=2.0)(logits, targets, avg_factor=2)
    torch.testing.assert_close(full, 2.0 * FocalLoss()(logits, targets) * 4 / 2)
    masked = FocalLoss()(logits, targets, weight=torch.tensor([1.0, 0, 0, 0]), avg_factor=1)
    torch.testing.assert_close(masked, FocalLoss()(logits[:1], targets[:1]))


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-12)
