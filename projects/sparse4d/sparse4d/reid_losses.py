"""Identity and visibility losses of the outside-in model."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsparse4d.models.utils import global_mean_denominator
from mmsparse4d.registry import MODELS


@MODELS.register_module()
class LabelSmoothIDLoss(nn.Module):
    """Label-smoothed cross-entropy over asset ids; targets < 0 are ignored, targets beyond
    the classifier's ``num_ids`` are an error (the config's ``num_ids`` is too small)."""

    def __init__(self, epsilon: float = 0.1, loss_weight: float = 1.0):
        super().__init__()
        self.epsilon, self.loss_weight = epsilon, loss_weight

    def forward(self, logits: Tensor, targets: Tensor, largest_target: int | None = None) -> Tensor:
        """logits [M, num_ids], targets [M] (< 0: no loss). ``largest_target``: the largest
        target when the caller knows it on the host; without it the targets are read here,
        which on a GPU waits for the device. The mean over the rows with a target (of the
        global batch under data parallelism), 0 when none has one; no boolean indexing, so
        no other wait."""
        largest = largest_target
        if largest is None:
            largest = int(targets.max()) if targets.numel() else -1
        if largest >= logits.shape[-1]:
            raise ValueError(
                f'LabelSmoothIDLoss: asset id {largest} but the classifier has '
                f'num_ids={logits.shape[-1]}; raise num_ids in the config to the number of assets '
                '(tools/create_data.py writes them to asset_ids.json)'
            )
        per_row = F.cross_entropy(
            logits,
            targets.clamp(min=-1),
            ignore_index=-1,
            reduction='none',
            label_smoothing=self.epsilon,
        )
        rows = global_mean_denominator((targets >= 0).sum())
        return self.loss_weight * per_row.sum() / rows


@MODELS.register_module()
class VisibilityLoss(nn.Module):
    """BCE between predicted per-camera visibility and the visible-area ratios [M, N];
    ``mask`` [M, N] selects the entries with a target."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, visibility: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        # BCE on probabilities is refused under CUDA autocast; it runs in float32 here.
        with torch.autocast(visibility.device.type, enabled=False):
            loss = F.binary_cross_entropy(
                visibility.float().clamp(1e-6, 1 - 1e-6), target.float(), reduction='none'
            )
        if mask is not None:
            return self.loss_weight * (loss * mask).sum() / global_mean_denominator(mask.sum())
        count = loss.new_tensor(loss.numel())
        return self.loss_weight * loss.sum() / global_mean_denominator(count)
