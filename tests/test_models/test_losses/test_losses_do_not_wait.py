"""The training losses run without host synchronisation or host-to-device copies: each one
in a training step drains the GPU's queue (found with ``capture_hazards`` on the CPU)."""

import torch

from mmsparse4d.models.layers import DenseDepthNet
from mmsparse4d.models.losses import FocalLoss, SparseBox3DLoss
from mmsparse4d.testing import capture_hazards


def test_focal_box_and_depth_losses_do_not_wait_for_the_device():
    logits = torch.randn(8, 6)
    targets = torch.tensor([0, 5, 6, -1, -3, 2, 6, 3])
    assert capture_hazards(FocalLoss(), logits, targets) == []
    pred, target = torch.randn(8, 11), torch.randn(8, 11)
    quality = torch.randn(8, 2)
    for symmetric in (False, True):
        loss = SparseBox3DLoss(symmetric_yaw=symmetric)
        assert capture_hazards(loss, pred, target, torch.ones(8, 11), 8, quality) == []
    net = DenseDepthNet(embed_dims=4, num_depth_layers=1)
    depth = [torch.rand(2, 1, 4, 6) * 10]
    assert capture_hazards(net.loss, depth, [torch.rand(2, 4, 6) * 10 - 2]) == []
