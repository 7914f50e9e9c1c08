"""Sigmoid focal loss that supervises background queries as negatives."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class FocalLoss(nn.Module):
    """Sigmoid focal loss over K classes where every target outside [0, K) (background K,
    ignored -1, denoising negatives -3, ...) is an all-negative row: it is trained towards
    zero for every class. NVIDIA TAO's criterion dropped those rows, which left unmatched
    queries unsupervised and filled the outputs with confident false positives.

    Args:
        gamma, alpha: the focal-loss parameters (2, 0.25).
        loss_weight: scale of the loss.
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, loss_weight: float = 1.0):
        super().__init__()
        self.gamma, self.alpha, self.loss_weight = gamma, alpha, loss_weight

    def forward(
        self,
        logits: Tensor,
        targets: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | Tensor | None = None,
        groups: int | None = None,
    ) -> Tensor:
        """logits [N, K], targets [N] integer labels, weight [N] per query.

        Returns the sum over queries and classes divided by ``avg_factor`` (default N). With
        ``groups`` G, the N rows are G equal consecutive groups (e.g. decoder stages) scored
        in one pass: the result is [G], each group's sum over its own ``avg_factor`` (a
        tensor [G], or one number for all).
        """
        num_classes = logits.shape[-1]
        positive = (targets >= 0) & (targets < num_classes)
        # One-hot by comparison, not indexed assignment: a boolean index waits for the device.
        classes = torch.arange(num_classes, device=logits.device)
        one_hot = ((targets[:, None] == classes) & positive[:, None]).to(logits.dtype)
        probability = logits.sigmoid()
        p_t = probability * one_hot + (1 - probability) * (1 - one_hot)
        alpha_t = self.alpha * one_hot + (1 - self.alpha) * (1 - one_hot)
        loss = alpha_t * (1 - p_t).pow(self.gamma)
        loss = loss * F.binary_cross_entropy_with_logits(logits, one_hot, reduction='none')
        if weight is not None:
            loss = loss * weight.reshape(-1, 1)
        rows = len(logits) if groups is None else len(logits) // groups
        denominator = avg_factor if avg_factor is not None else max(rows, 1)
        total = loss.sum() if groups is None else loss.reshape(groups, -1).sum(1)
        if torch.is_tensor(denominator):  # no host sync
            return self.loss_weight * total / denominator.clamp(min=1e-6)
        return self.loss_weight * total / max(float(denominator), 1e-6)
