"""Training targets: Hungarian matching of queries to ground truth, and denoising groups."""

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ...registry import TASK_UTILS
from ...structures import ANCHOR_DIM
from ..utils import pad_sequence, to_device, to_host_at_once

DN_NEGATIVE = -3  # class target of a denoising negative: trained as background
PADDING = -1  # class target of padding: no loss at all
INVALID_COST = 1e8


@TASK_UTILS.register_module()
class SparseBox3DTarget:
    """Args:
    num_classes: K; unmatched queries get class K (background).
    cls_weight, alpha, gamma, eps: the focal classification cost.
    box_weight, reg_weights: the L1 box cost per anchor dimension (11); Sparse4D v3 leaves
        yaw and velocity out of matching (weights 0).
    num_dn_groups: denoising groups (0 disables them).
    dn_noise_scale: [11] noise scale per anchor dimension (centre in metres, the rest in the
        encoded space).
    max_dn_gt: at most this many ground-truth boxes per sample are noised.
    add_neg_dn: add a negative copy (noise between 1 and 2 scales) of every box.
    temporal_align_threshold: matching cost below which a carried query keeps the ground
        truth it had in the previous frame (see ``sample``).
    num_temp_dn_groups: denoising groups carried to the next frame (``cache_dn``), where
        they replace the first fresh groups after the first refinement (``update_dn``) and
        learn to follow the same objects; 0 disables temporal denoising.
    """

    def __init__(self, num_classes, cls_weight=2.0, alpha=0.25, gamma=2.0, eps=1e-12,
                 box_weight=0.25, reg_weights=(2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0, 0, 0, 0, 0),
                 num_dn_groups=5, dn_noise_scale=(2.0, 2.0, 2.0) + (0.5,) * 8, max_dn_gt=128,
                 add_neg_dn=True, num_temp_dn_groups=0,
                 temporal_align_threshold=0.5):  # fmt: skip
        if len(reg_weights) != ANCHOR_DIM or len(dn_noise_scale) != ANCHOR_DIM:
            raise ValueError(
                f'SparseBox3DTarget: reg_weights and dn_noise_scale need {ANCHOR_DIM} values'
            )
        self.num_classes = num_classes
        self.cls_weight, self.alpha, self.gamma, self.eps = cls_weight, alpha, gamma, eps
        self.box_weight = box_weight
        self.reg_weights = torch.tensor(reg_weights, dtype=torch.float32)
        self._reg_weights_by_device: dict[torch.device, Tensor] = {}
        self.num_dn_groups, self.max_dn_gt, self.add_neg_dn = num_dn_groups, max_dn_gt, add_neg_dn
        self.dn_noise_scale = torch.tensor(dn_noise_scale, dtype=torch.float32)
        if not 0 <= num_temp_dn_groups <= max(num_dn_groups, 0):
            raise ValueError(
                f'SparseBox3DTarget: num_temp_dn_groups ({num_temp_dn_groups}) must be in '
                f'[0, num_dn_groups={num_dn_groups}]'
            )
        self.num_temp_dn_groups = num_temp_dn_groups
        self.temporal_align_threshold = temporal_align_threshold

    def _cls_cost(self, logits: Tensor, labels: Tensor) -> Tensor:
        p = logits.sigmoid()
        positive = -(p + self.eps).log() * self.alpha * (1 - p).pow(self.gamma)
        negative = -(1 - p + self.eps).log() * (1 - self.alpha) * p.pow(self.gamma)
        return self.cls_weight * (positive - negative)[:, labels]

    def _reg_weights_on(self, device: torch.device) -> Tensor:
        # Copied to each device once: a copy per cost matrix waits for the device every time.
        if device not in self._reg_weights_by_device:
            self._reg_weights_by_device[device] = self.reg_weights.to(device)
        return self._reg_weights_by_device[device]

    def _box_cost(self, boxes: Tensor, targets: Tensor) -> Tensor:
        weights = self._reg_weights_on(boxes.device)
        return self.box_weight * ((boxes[:, None] - targets[None]).abs() * weights).nan_to_num(
            0
        ).sum(-1)

    @staticmethod
    def _assign(cost: Tensor) -> tuple[np.ndarray, np.ndarray]:
        cost = (
            cost.detach()
            .float()
            .cpu()
            .nan_to_num(nan=INVALID_COST, posinf=INVALID_COST, neginf=INVALID_COST)
        )
        return linear_sum_assignment(cost.numpy())

    def _aligned_assign(self, cost: Tensor, prior_ids: Tensor, gt_ids: Tensor):
        """Keep (query, gt) pairs of the same instance id below the threshold; Hungarian
        for the rest."""
        same = (prior_ids[:, None] == gt_ids[None].to(prior_ids.device)) & (prior_ids[:, None] >= 0)
        keep = same & (cost < self.temporal_align_threshold)
        kept_rows, kept_cols = torch.nonzero(keep, as_tuple=True)
        if len(kept_rows) == 0:
            return self._assign(cost)
        cost = cost.clone()
        cost[kept_rows] = INVALID_COST
        cost[:, kept_cols] = INVALID_COST
        rows, cols = self._assign(cost)
        fresh = cost[torch.as_tensor(rows), torch.as_tensor(cols)] < INVALID_COST
        rows = np.concatenate([kept_rows.cpu().numpy(), rows[fresh.cpu().numpy()]])
        cols = np.concatenate([kept_cols.cpu().numpy(), cols[fresh.cpu().numpy()]])
        return rows, cols

    def sample(self, cls_pred: Tensor, box_pred: Tensor, gt_labels: list[Tensor],
               gt_anchors: list[Tensor], return_indices: bool = False,
               prior_ids: Tensor | None = None, gt_ids: list[Tensor] | None = None):  # fmt: skip
        """Match queries to ground truth per sample.

        Args:
            cls_pred: [B, A, K] logits; box_pred: [B, A, 11].
            gt_labels: per sample [M]; gt_anchors: per sample [M, 11] encoded boxes.

        Returns:
            tuple: cls_target [B, A] (K = background), box_target [B, A, 11] and
            box_weight [B, A, 11] (reg_weights where matched, 0 elsewhere); with
            ``return_indices`` also the matched ground-truth index [B, A] (-1 unmatched).

        Temporal alignment (NVIDIA's ``use_temporal_align``): with ``prior_ids`` [B, A] (the
        instance id a carried query was matched to in the previous frame, -1 otherwise) and
        ``gt_ids``, a carried query keeps the ground truth of the same id when their cost is
        below ``temporal_align_threshold``; the rest go through Hungarian matching. A track
        then stays with its query, which is what keeps track ids stable.
        """
        batch, anchors = cls_pred.shape[:2]
        device = box_pred.device
        assigned = torch.full((batch, anchors), -1, dtype=torch.long)
        present = [b for b, labels in enumerate(gt_labels) if len(labels)]
        if present:
            # Every sample's cost matrix crosses to the host in one transfer (one sync).
            costs = [
                self._cls_cost(cls_pred[b], gt_labels[b])
                + self._box_cost(box_pred[b], gt_anchors[b])
                for b in present
            ]
            # With temporal alignment the ids come along in the same transfer.
            aligned = prior_ids is not None and gt_ids is not None
            host = to_host_at_once([*costs, *([prior_ids, *gt_ids] if aligned else [])])
            if aligned:
                prior_host, ids_host = host[len(costs)], host[len(costs) + 1 :]
            for b, cost in zip(present, host[: len(costs)], strict=True):
                cost = cost.float()  # INVALID_COST must stay above every cost (not in bf16)
                if aligned:
                    rows, cols = self._aligned_assign(cost, prior_host[b], ids_host[b])
                else:
                    rows, cols = self._assign(cost)
                assigned[b, torch.as_tensor(rows, dtype=torch.long)] = torch.as_tensor(
                    cols, dtype=torch.long
                )
        assigned = to_device(assigned, device)
        matched = assigned >= 0
        index = assigned.clamp(min=0)
        labels = pad_sequence(gt_labels, -1, device).long()
        targets = pad_sequence(gt_anchors, 0.0, device).to(box_pred.dtype)
        cls_target = torch.where(
            matched, labels.gather(1, index), torch.full_like(index, self.num_classes)
        )
        box_target = targets.gather(1, index[..., None].expand(-1, -1, ANCHOR_DIM))
        weights = self._reg_weights_on(torch.device(device))
        box_weight = weights * (torch.isfinite(box_target) & matched[..., None])
        box_target = torch.where(matched[..., None], box_target.nan_to_num(0), 0.0)
        if return_indices:
            return cls_target, box_target, box_weight, assigned
        return cls_target, box_target, box_weight

    def get_dn_anchors(
        self,
        gt_labels: list[Tensor],
        gt_anchors: list[Tensor],
        gt_ids: list[Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> dict | None:
        """Noised copies of the ground truth in ``num_dn_groups`` groups.

        Returns None without denoising (no groups or no ground truth), else a dict:
        ``dn_anchor`` [B, D, 11] with D = groups x 2M (M the largest per-sample count after
        ``max_dn_gt``), ``dn_cls_target`` [B, D] (label, -3 for negatives, -1 for padding),
        ``dn_box_target`` [B, D, 11], ``dn_valid_mask`` [B, D] (rows that get a loss),
        ``dn_id_target`` [B, D] and ``dn_attn_mask`` [D, D] (True: no attention; groups see
        only themselves).
        """
        if self.num_dn_groups <= 0:
            return None
        counts = [min(len(labels), self.max_dn_gt) for labels in gt_labels]
        most = max(counts, default=0)
        if most == 0:
            return None
        # Small tensors and many tiny matchings: built on the host, moved once at the end.
        target_device = gt_anchors[0].device
        device = torch.device('cpu')
        count = len(gt_labels)
        host = to_host_at_once([*gt_labels, *gt_anchors, *(gt_ids or [])])
        gt_labels, gt_anchors = host[:count], [a.float() for a in host[count : 2 * count]]
        gt_ids = None if gt_ids is None else host[2 * count :]
        batch, groups = len(gt_labels), self.num_dn_groups
        labels = torch.full((batch, most), PADDING, dtype=torch.long, device=device)
        boxes = torch.zeros((batch, most, ANCHOR_DIM), device=device)
        ids = torch.full((batch, most), -1, dtype=torch.long, device=device)
        for b, count in enumerate(counts):
            labels[b, :count] = gt_labels[b][:count]
            boxes[b, :count] = gt_anchors[b][:count].nan_to_num(0)
            if gt_ids is not None:
                ids[b, :count] = gt_ids[b][:count]
        copies = 2 if self.add_neg_dn else 1
        scale = self.dn_noise_scale.to(device)
        # [groups, B, copies * M, 11]
        base = boxes[None].repeat(groups, 1, copies, 1)
        noise = (torch.rand(base.shape, generator=generator, device=device) * 2 - 1) * scale
        if self.add_neg_dn:
            magnitude = (
                torch.rand((groups, batch, most, ANCHOR_DIM), generator=generator, device=device)
                + 1
            )
            sign = torch.where(
                torch.rand((groups, batch, most, ANCHOR_DIM), generator=generator, device=device)
                < 0.5,
                -1.0,
                1.0,
            )
            noise[:, :, most:] = magnitude * sign * scale
        anchors = base + noise
        cls_target = torch.full(
            (groups, batch, copies * most), DN_NEGATIVE, dtype=torch.long, device=device
        )
        box_target = torch.zeros_like(anchors)
        id_target = torch.full((groups, batch, copies * most), -1, dtype=torch.long, device=device)
        weights = self.reg_weights.to(device)
        for g in range(groups):
            for b, count in enumerate(counts):
                if count == 0:
                    continue
                real = torch.cat(
                    [torch.arange(count, device=device) + k * most for k in range(copies)]
                )
                cost = self.box_weight * (
                    (anchors[g, b, real][:, None] - boxes[b, :count][None]).abs() * weights
                ).sum(-1)
                rows, cols = self._assign(cost)
                matched = real[torch.as_tensor(rows, device=device)]
                cols = torch.as_tensor(cols, device=device)
                cls_target[g, b, matched] = labels[b, cols]
                box_target[g, b, matched] = boxes[b, cols]
                id_target[g, b, matched] = ids[b, cols]
        slot = torch.arange(copies * most, device=device) % most
        real_slot = slot[None, None] < torch.tensor(counts, device=device)[None, :, None]
        cls_target = torch.where(real_slot, cls_target, torch.full_like(cls_target, PADDING))
        valid = real_slot.expand_as(cls_target)
        per_group = copies * most
        group_of = torch.arange(groups * per_group, device=device) // per_group
        attn_mask = group_of[:, None] != group_of[None, :]

        def flatten(x):  # [groups, B, per_group, ...] -> [B, groups * per_group, ...]
            return x.transpose(0, 1).reshape(batch, groups * per_group, *x.shape[3:])

        out = {
            'dn_anchor': flatten(anchors),
            'dn_box_target': flatten(box_target),
            'dn_cls_target': flatten(cls_target),
            'dn_valid_mask': flatten(valid.contiguous()),
            'dn_id_target': flatten(id_target),
            'dn_attn_mask': attn_mask,
        }
        out = {key: to_device(value, target_device) for key, value in out.items()}
        out['dn_groups'] = groups
        return out

    def cache_dn(self, dn: dict | None, dn_feature: Tensor, dn_anchor: Tensor,
                 generator: torch.Generator | None = None) -> dict | None:  # fmt: skip
        """``num_temp_dn_groups`` random groups of this frame's denoising queries, detached,
        to be carried to the next frame (None without temporal denoising).

        Args:
            dn: this frame's denoising targets (``get_dn_anchors``).
            dn_feature: [B, D, C] and dn_anchor: [B, D, 11], the last layer's queries.
        """
        if self.num_temp_dn_groups <= 0 or dn is None:
            return None
        batch, count = dn_anchor.shape[:2]
        groups = dn['dn_groups']
        chosen = torch.randperm(groups, generator=generator)[: self.num_temp_dn_groups]
        chosen = chosen.to(dn_anchor.device)

        def pick(x: Tensor) -> Tensor:
            grouped = x.reshape(batch, groups, count // groups, *x.shape[2:])
            return grouped[:, chosen].flatten(1, 2).detach()

        return {
            'feature': pick(dn_feature),
            'anchor': pick(dn_anchor),
            'cls_target': pick(dn['dn_cls_target']),
            'valid_mask': pick(dn['dn_valid_mask']),
            'id_target': pick(dn['dn_id_target']),
            'per_group': count // groups,
        }

    def update_dn(self, dn_feature: Tensor, dn_anchor: Tensor, dn: dict, cached: dict,
                  temp_valid: Tensor, gt_ids: list[Tensor], gt_anchors: list[Tensor]):  # fmt: skip
        """Put the carried groups (anchors already moved to this frame) in place of the first
        fresh groups of the samples whose temporal cache is valid.

        A carried positive keeps its class and regresses to the current box of the same
        instance id; one whose object has left gets no loss (upstream's rule); carried
        negatives stay negatives.

        Returns:
            tuple: dn_feature [B, D, C], dn_anchor [B, D, 11] and the updated target dict.
        """
        batch, count = dn_anchor.shape[:2]
        groups, temp = dn['dn_groups'], self.num_temp_dn_groups
        per_group, old = count // groups, cached['per_group']

        def fit(x: Tensor, fill) -> Tensor:
            """[B, temp * old, ...] -> [B, temp * per_group, ...], padding with ``fill``."""
            grouped = x.reshape(batch, temp, old, *x.shape[2:])[:, :, :per_group]
            if old < per_group:
                pad = grouped.new_full((batch, temp, per_group - old, *x.shape[2:]), fill)
                grouped = torch.cat([grouped, pad], dim=2)
            return grouped.flatten(1, 2)

        feature = fit(cached['feature'], 0)
        anchor = fit(cached['anchor'], 0)
        cls_target = fit(cached['cls_target'], PADDING)
        valid = fit(cached['valid_mask'], False)
        ids = fit(cached['id_target'], -1)
        # Match carried queries to this frame's objects by instance id, all samples at once.
        current_ids = pad_sequence(gt_ids, -2, ids.device).long()  # -2 never matches
        current_anchors = pad_sequence(gt_anchors, 0.0, ids.device)
        positive = cls_target >= 0
        same = (ids[:, :, None] == current_ids[:, None]) & positive[..., None]
        found = same.any(-1)
        index = same.float().argmax(-1)
        box_target = current_anchors.gather(1, index[..., None].expand(-1, -1, ANCHOR_DIM))
        box_target = torch.where(found[..., None], box_target.nan_to_num(0), 0.0).to(anchor.dtype)
        left = positive & ~found
        cls_target = torch.where(left, torch.full_like(cls_target, PADDING), cls_target)
        valid = valid & ~left
        span = temp * per_group
        use = temp_valid.to(dn_anchor.device)[:, None]

        def merge(fresh: Tensor, carried: Tensor) -> Tensor:
            keep = use.reshape(batch, *([1] * (fresh.dim() - 1)))
            head = torch.where(keep, carried.to(fresh.dtype), fresh[:, :span])
            return torch.cat([head, fresh[:, span:]], dim=1)

        updated = dict(dn)
        updated['dn_cls_target'] = merge(dn['dn_cls_target'], cls_target)
        updated['dn_box_target'] = merge(dn['dn_box_target'], box_target)
        updated['dn_valid_mask'] = merge(dn['dn_valid_mask'], valid)
        updated['dn_id_target'] = merge(dn['dn_id_target'], ids)
        return merge(dn_feature, feature), merge(dn_anchor, anchor), updated
