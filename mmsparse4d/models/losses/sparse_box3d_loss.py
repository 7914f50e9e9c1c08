"""Box regression and quality losses of matched queries."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import MODELS
from ...structures import COS_YAW, SIN_YAW, X, Z

CENTERNESS, YAWNESS = 0, 1


def gaussian_focal_loss(
    probability: Tensor,
    target: Tensor,
    alpha: float = 2.0,
    gamma: float = 4.0,
    eps: float = 1e-12,
    weight: Tensor | None = None,
) -> Tensor:
    """CornerNet's focal loss for soft targets in [0, 1] (1 = positive), summed (each element
    times ``weight`` when given)."""
    loss = gaussian_focal_loss_elements(probability, target, alpha, gamma, eps)
    return (loss * weight).sum() if weight is not None else loss.sum()


def gaussian_focal_loss_elements(
    probability: Tensor, target: Tensor, alpha: float = 2.0, gamma: float = 4.0, eps=1e-12
) -> Tensor:
    """``gaussian_focal_loss`` per element, unsummed."""
    positive = target.eq(1).float()
    negative = (1 - target).pow(gamma)
    pos_loss = -(probability + eps).log() * (1 - probability).pow(alpha) * positive
    neg_loss = -(1 - probability + eps).log() * probability.pow(alpha) * negative
    return pos_loss + neg_loss


def _grouped_sum(values: Tensor, groups: int | None) -> Tensor:
    """The sum of values [N, ...], or with ``groups`` G the sums [G] of its G equal
    consecutive row groups."""
    return values.sum() if groups is None else values.reshape(groups, -1).sum(1)


@MODELS.register_module()
class SparseBox3DLoss(nn.Module):
    """L1 on the 11-d anchor encoding (per-dimension weights), and, with the quality branch,
    centerness (BCE against exp(-centre error in metres)) and yawness (Gaussian focal loss
    against whether the predicted heading points the target's way).

    Args:
        loss_weight: scale of the L1 term (0.25 in Sparse4D v3).
        quality_weight: scale of the two quality terms.
        symmetric_yaw: regress the yaw modulo pi: each row's (sin, cos) target is negated
            (yaw + pi) where that is closer to the prediction. For objects that look the
            same from front and back (the synthetic renderer's boxes), where the plain
            target's ambiguity pulls (sin, cos) to 0 and leaves the yaw unlearned; the
            yawness target then compares with the nearer target too. Off by default
            (upstream's loss).
    """

    def __init__(
        self, loss_weight: float = 0.25, quality_weight: float = 1.0, symmetric_yaw: bool = False
    ):
        super().__init__()
        self.loss_weight, self.quality_weight = loss_weight, quality_weight
        self.symmetric_yaw = symmetric_yaw

    @staticmethod
    def nearer_yaw_target(box_pred: Tensor, box_target: Tensor) -> Tensor:
        """``box_target`` with (sin, cos) negated on the rows where yaw + pi is closer (L1)
        to the prediction's (sin, cos)."""
        yaw = slice(SIN_YAW, COS_YAW + 1)
        kept = (box_pred[:, yaw] - box_target[:, yaw]).abs().sum(-1)
        flipped = (box_pred[:, yaw] + box_target[:, yaw]).abs().sum(-1)
        sign = torch.where(flipped < kept, -1.0, 1.0).to(box_target.dtype)[:, None]
        return torch.cat(
            [box_target[:, :SIN_YAW], box_target[:, yaw] * sign, box_target[:, COS_YAW + 1 :]],
            dim=-1,
        )

    def forward(
        self,
        box_pred: Tensor,
        box_target: Tensor,
        weight: Tensor,
        avg_factor,
        quality: Tensor | None = None,
        mask: Tensor | None = None,
        groups: int | None = None,
    ) -> dict[str, Tensor]:
        """box_pred, box_target, weight: [N, 11]; quality: [N, 2] logits; avg_factor: the
        number of positives (a number or a tensor); mask: [N] rows that count (default all;
        masking instead of indexing keeps the GPU free of host syncs). With ``groups`` G the
        N rows are G equal consecutive groups (e.g. decoder stages) scored in one pass: each
        loss is [G], each group's sum over its own ``avg_factor`` (a tensor [G] or one
        number). A number below 1 counts as 1; a tensor is taken as given (guarded against
        0 only): the head's ``global_mean_denominator``, below 1 under data parallelism
        when the whole batch holds fewer positives than processes."""
        denominator = (
            avg_factor.clamp(min=1e-6)
            if torch.is_tensor(avg_factor)
            else max(float(avg_factor), 1.0)
        )
        if self.symmetric_yaw:
            box_target = self.nearer_yaw_target(box_pred.detach(), box_target)
        losses = {
            'loss_box': self.loss_weight
            * _grouped_sum((box_pred - box_target).abs() * weight, groups)
            / denominator
        }
        if quality is not None:
            error = torch.linalg.norm(box_pred[:, X : Z + 1] - box_target[:, X : Z + 1], dim=-1)
            centerness = torch.exp(-error).detach()
            rows = torch.ones_like(centerness) if mask is None else mask.to(centerness.dtype)
            losses['loss_cns'] = (
                self.quality_weight
                * _grouped_sum(
                    F.binary_cross_entropy_with_logits(
                        quality[:, CENTERNESS].float(), centerness.float(), reduction='none'
                    )
                    * rows,
                    groups,
                )
                / denominator
            )
            same_way = (
                F.cosine_similarity(
                    box_pred[:, SIN_YAW : COS_YAW + 1], box_target[:, SIN_YAW : COS_YAW + 1], dim=-1
                )
                > 0
            )
            losses['loss_yns'] = (
                self.quality_weight
                * _grouped_sum(
                    gaussian_focal_loss_elements(
                        quality[:, YAWNESS].float().sigmoid(), same_way.float()
                    )
                    * rows,
                    groups,
                )
                / denominator
            )
        return losses
