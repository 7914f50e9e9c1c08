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
    static_dn_width: every group ``max_dn_gt`` boxes wide whatever the batch holds (the
        rest padding, masked and loss-free: the same losses), so that the decoders see one
        shape every step, as a CUDA graph of them needs; default: the batch's largest count.
    add_neg_dn: add a negative copy (noise between 1 and 2 scales) of every box.
    temporal_align_threshold: matching cost below which a carried query keeps the ground
        truth it had in the previous frame (see ``sample``).
    num_temp_dn_groups: denoising groups carried to the next frame (``cache_dn``), where
        they replace the first fresh groups after the first refinement (``update_dn``) and
        learn to follow the same objects; 0 disables temporal denoising.
    """

    def __init__(
        self,
        num_classes,
        cls_weight=2.0,
        alpha=0.25,
        gamma=2.0,
        eps=1e-12,
        box_weight=0.25,
        reg_weights=(2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0, 0, 0, 0, 0),
        num_dn_groups=5,
        dn_noise_scale=(2.0, 2.0, 2.0) + (0.5,) * 8,
        max_dn_gt=128,
        add_neg_dn=True,
        num_temp_dn_groups=0,
        temporal_align_threshold=0.5,
        static_dn_width=False,
    ):
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
        self.static_dn_width = static_dn_width
        self.temporal_align_threshold = temporal_align_threshold

    def _reg_weights_on(self, device: torch.device) -> Tensor:
        # Copied to each device once: a copy per cost matrix waits for the device every time.
        if device not in self._reg_weights_by_device:
            self._reg_weights_by_device[device] = self.reg_weights.to(device)
        return self._reg_weights_by_device[device]

    @torch.no_grad()  # a matching cost, never differentiated (no autograd bookkeeping)
    def _costs(self, cls_pred: Tensor, box_pred: Tensor, labels: Tensor, anchors: Tensor) -> Tensor:
        """Matching cost of every query against every ground-truth slot, the whole batch at
        once (a few kernels instead of a dozen per sample: the training step is bound by
        the host's launches).

        Args:
            cls_pred: [B, A, K] logits; box_pred: [B, A, 11].
            labels: [B, M] (padding: any valid class); anchors: [B, M, 11] encoded boxes.

        Returns:
            Tensor: [B, A, M], focal classification cost plus weighted L1 box cost (NaN
            target dimensions cost nothing). Padding columns hold meaningless values.
        """
        p = cls_pred.sigmoid()
        positive = -(p + self.eps).log() * self.alpha * (1 - p).pow(self.gamma)
        negative = -(1 - p + self.eps).log() * (1 - self.alpha) * p.pow(self.gamma)
        index = labels[:, None].expand(-1, cls_pred.shape[1], -1)
        cls_cost = self.cls_weight * (positive - negative).gather(2, index)
        weights = self._reg_weights_on(box_pred.device)
        difference = (box_pred[:, :, None] - anchors[:, None]).abs() * weights
        return cls_cost + self.box_weight * difference.nan_to_num(0).sum(-1)

    @staticmethod
    def _finite(cost: np.ndarray) -> np.ndarray:
        """``cost`` with NaN and infinities replaced by INVALID_COST (never matched)."""
        return np.nan_to_num(cost, nan=INVALID_COST, posinf=INVALID_COST, neginf=INVALID_COST)

    def _aligned_assign(self, cost: np.ndarray, prior_ids: np.ndarray, gt_ids: np.ndarray):
        """Keep (query, gt) pairs of the same instance id below the threshold; Hungarian
        for the rest. cost [A, M] finite float32, prior_ids [A], gt_ids [M] (host arrays)."""
        same = (prior_ids[:, None] == gt_ids[None]) & (prior_ids[:, None] >= 0)
        keep = same & (cost < self.temporal_align_threshold)
        kept_rows, kept_cols = np.nonzero(keep)
        if len(kept_rows) == 0:
            return linear_sum_assignment(cost)
        cost = cost.copy()
        cost[kept_rows] = INVALID_COST
        cost[:, kept_cols] = INVALID_COST
        rows, cols = linear_sum_assignment(cost)
        fresh = cost[rows, cols] < INVALID_COST
        return np.concatenate([kept_rows, rows[fresh]]), np.concatenate([kept_cols, cols[fresh]])

    def sample(
        self,
        cls_pred: Tensor,
        box_pred: Tensor,
        gt_labels: list[Tensor],
        gt_anchors: list[Tensor],
        return_indices: bool = False,
        prior_ids: Tensor | None = None,
        gt_ids: list[Tensor] | None = None,
    ):
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
        stacked = self.match_stages(
            [(cls_pred, box_pred, prior_ids)], gt_labels, gt_anchors, gt_ids
        )
        targets = tuple(t[0] for t in stacked)  # the one stage
        return targets if return_indices else targets[:3]

    def match_stages(
        self,
        stages: list[tuple[Tensor, Tensor, Tensor | None]],
        gt_labels: list[Tensor],
        gt_anchors: list[Tensor],
        gt_ids: list[Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``sample`` for several decoder stages against the same ground truth, with one
        device-to-host transfer of every stage's costs (and ids) and one transfer of every
        stage's matches back: the host waits for the device once, not once per stage.

        Args:
            stages: per stage (cls_pred [B, A, K], box_pred [B, A, 11], prior_ids [B, A] or
                None for no temporal alignment at that stage).

        Returns:
            the S stages' cls_target [S, B, A], box_target [S, B, A, 11], box_weight
            [S, B, A, 11] and assigned [S, B, A], stacked (each stage's as ``sample``
            returns it with ``return_indices``).
        """
        batch, anchors = stages[0][0].shape[:2]
        device = stages[0][1].device
        labels = pad_sequence(gt_labels, -1, device).long()
        targets = pad_sequence(gt_anchors, 0.0, device)
        assigned = np.full((len(stages), batch, anchors), -1, dtype=np.int64)
        counts = [len(labels_b) for labels_b in gt_labels]
        num_stages = len(stages)
        if any(counts):
            # Every stage's costs in one pass over the stages stacked ([S * B, ...]): a few
            # kernels, not a few per stage. float32: INVALID_COST must stay above every cost
            # (not in bf16).
            stacked = self._costs(
                torch.cat([cls for cls, _, _ in stages]),
                torch.cat([box for _, box, _ in stages]),
                labels.clamp(min=0).repeat(num_stages, 1),
                targets.repeat(num_stages, 1, 1),
            )
            costs = [stacked.float().unflatten(0, (num_stages, batch))]
            aligned = [prior is not None and gt_ids is not None for _, _, prior in stages]
            priors = [prior for (_, _, prior), a in zip(stages, aligned, strict=True) if a]
            ids = [pad_sequence(gt_ids, -2, device)] if any(aligned) else []
            host = [t.numpy() for t in to_host_at_once([*costs, *priors, *ids])]
            # Once for every stage, not per sample and stage (144 at batch 16).
            host_costs = self._finite(host[0])
            host_priors = iter(host[1 : 1 + len(priors)])
            host_ids = host[-1] if ids else None
            for stage, (cost_s, is_aligned) in enumerate(zip(host_costs, aligned, strict=True)):
                prior_s = next(host_priors) if is_aligned else None
                for b, count in enumerate(counts):
                    if count == 0:
                        continue
                    cost = cost_s[b, :, :count]
                    if is_aligned:
                        rows, cols = self._aligned_assign(cost, prior_s[b], host_ids[b, :count])
                    else:
                        rows, cols = linear_sum_assignment(cost)
                    assigned[stage, b, rows] = cols
        assigned = to_device(assigned, device)
        weights = self._reg_weights_on(torch.device(device))
        # Every stage's targets at once ([S, B, A, ...]), then one view per stage.
        matched = assigned >= 0
        index = assigned.clamp(min=0)
        cls_target = torch.where(
            matched,
            labels.expand(num_stages, -1, -1).gather(2, index),
            torch.full_like(index, self.num_classes),
        )
        box_target = (
            targets.to(stages[0][1].dtype)
            .expand(num_stages, -1, -1, -1)
            .gather(2, index[..., None].expand(-1, -1, -1, ANCHOR_DIM))
        )
        box_weight = weights * (torch.isfinite(box_target) & matched[..., None])
        box_target = torch.where(matched[..., None], box_target.nan_to_num(0), 0.0)
        return cls_target, box_target, box_weight, assigned

    def get_dn_anchors(
        self,
        gt_labels: list[Tensor],
        gt_anchors: list[Tensor],
        gt_ids: list[Tensor] | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        min_per_group: int = 0,
    ) -> dict | None:
        """Noised copies of the ground truth in ``num_dn_groups`` groups, on ``device``
        (default: the ground truth's). Ground truth on the host costs no wait for the device.
        Each group holds (1 or 2 copies) x M rows, M the batch's largest box count, or more
        where ``min_per_group`` asks (the width of the groups carried from the last frame,
        which ``update_dn`` puts in their place: a narrower group would cut carried rows,
        and which, would depend on the other samples of the batch). While the carrying goes
        on, the groups so keep the widest width carried (at most (1 or 2) x ``max_dn_gt``);
        the extra rows are padding, masked in attention and loss-free.

        Returns None without denoising (no groups, or no ground truth, nothing carried and
        no static width), else a dict:
        ``dn_anchor`` [B, D, 11] with D = groups x 2M (M the largest per-sample count after
        ``max_dn_gt``), ``dn_cls_target`` [B, D] (label, -3 for negatives, -1 for padding),
        ``dn_box_target`` [B, D, 11], ``dn_valid_mask`` [B, D] (rows that get a loss),
        ``dn_padding_mask`` [B, D] (rows that only pad the sample to the batch's width),
        ``dn_id_target`` [B, D] and ``dn_attn_mask`` [D, D] (True: no attention; groups see
        only themselves).
        """
        if self.num_dn_groups <= 0:
            return None
        counts = [min(len(labels), self.max_dn_gt) for labels in gt_labels]
        most = max(counts, default=0)
        if most == 0 and min_per_group == 0 and not self.static_dn_width:
            return None
        copies = 2 if self.add_neg_dn else 1
        most = max(most, -(-min_per_group // copies))
        if self.static_dn_width:
            most = self.max_dn_gt
        # Small tensors and many tiny matchings: built on the host, moved once at the end.
        # The ground truth is padded where it lives and crosses in one transfer (a
        # device-to-host copy waits for the device). Padding is what the groups need:
        # class PADDING, zero boxes, id -1.
        target_device = torch.device(device) if device is not None else gt_anchors[0].device
        host = torch.device('cpu')
        source_device = gt_anchors[0].device
        padded = [
            pad_sequence(gt_labels, PADDING, source_device, most),
            pad_sequence(gt_anchors, 0.0, source_device, most),
        ]
        if gt_ids is not None:
            padded.append(pad_sequence(gt_ids, -1, source_device, most))
        # The first `most` slots: a sample with more than max_dn_gt boxes keeps its first ones.
        on_host = [t[:, :most] for t in to_host_at_once(padded)]
        labels, boxes = on_host[0].long(), on_host[1].float().nan_to_num(0)
        ids = on_host[2].long() if gt_ids is not None else torch.full_like(labels, -1)
        batch, groups = len(gt_labels), self.num_dn_groups
        scale = self.dn_noise_scale.to(host)
        # [groups, B, copies * M, 11]
        base = boxes[None].repeat(groups, 1, copies, 1)
        noise = (torch.rand(base.shape, generator=generator, device=host) * 2 - 1) * scale
        if self.add_neg_dn:
            magnitude = (
                torch.rand((groups, batch, most, ANCHOR_DIM), generator=generator, device=host) + 1
            )
            sign = torch.where(
                torch.rand((groups, batch, most, ANCHOR_DIM), generator=generator, device=host)
                < 0.5,
                -1.0,
                1.0,
            )
            noise[:, :, most:] = magnitude * sign * scale
        anchors = base + noise
        # Each group's noised copies are matched back to the boxes they came from (a
        # negative may land nearer another box). Per sample, the costs of every group are
        # computed at once (over the sample's own boxes, not the batch's padding: dense
        # scenes have up to max_dn_gt), and the Hungarian matching runs per group in numpy
        # (the step is bound by the host's per-op overhead).
        weights = self.reg_weights.to(host)
        labels_np, boxes_np, ids_np = labels.numpy(), boxes.numpy(), ids.numpy()
        cls_target = np.full((groups, batch, copies * most), DN_NEGATIVE, dtype=np.int64)
        box_target = np.zeros((groups, batch, copies * most, ANCHOR_DIM), dtype=np.float32)
        id_target = np.full((groups, batch, copies * most), -1, dtype=np.int64)
        for b, count in enumerate(counts):
            if count == 0:
                continue
            real = (np.arange(count)[None] + np.arange(copies)[:, None] * most).reshape(-1)
            noised = anchors[:, b, torch.from_numpy(real)]  # [groups, copies * count, 11]
            costs = self.box_weight * (
                (noised[:, :, None] - boxes[b, :count][None, None]).abs() * weights
            ).sum(-1)  # [groups, copies * count, count]
            for g, cost in enumerate(self._finite(costs.numpy())):
                rows, cols = linear_sum_assignment(cost)
                matched = real[rows]
                cls_target[g, b, matched] = labels_np[b, cols]
                box_target[g, b, matched] = boxes_np[b, cols]
                id_target[g, b, matched] = ids_np[b, cols]
        cls_target, box_target, id_target = (
            torch.from_numpy(t) for t in (cls_target, box_target, id_target)
        )
        slot = torch.arange(copies * most, device=host) % most
        real_slot = slot[None, None] < torch.tensor(counts, device=host)[None, :, None]
        cls_target = torch.where(real_slot, cls_target, torch.full_like(cls_target, PADDING))
        valid = real_slot.expand_as(cls_target)
        per_group = copies * most
        group_of = torch.arange(groups * per_group, device=host) // per_group
        attn_mask = group_of[:, None] != group_of[None, :]

        def flatten(x):  # [groups, B, per_group, ...] -> [B, groups * per_group, ...]
            return x.transpose(0, 1).reshape(batch, groups * per_group, *x.shape[3:])

        out = {
            'dn_anchor': flatten(anchors),
            'dn_box_target': flatten(box_target),
            'dn_cls_target': flatten(cls_target),
            'dn_valid_mask': flatten(valid.contiguous()),
            'dn_padding_mask': flatten((~valid).contiguous()),
            'dn_id_target': flatten(id_target),
            'dn_attn_mask': attn_mask,
        }
        out = {key: to_device(value, target_device) for key, value in out.items()}
        out['dn_groups'] = groups
        return out

    def cache_dn(
        self,
        dn: dict | None,
        dn_feature: Tensor,
        dn_anchor: Tensor,
        generator: torch.Generator | None = None,
    ) -> dict | None:
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
        chosen = to_device(chosen, dn_anchor.device)  # drawn on the host: copied without a wait

        def pick(x: Tensor) -> Tensor:
            grouped = x.reshape(batch, groups, count // groups, *x.shape[2:])
            return grouped[:, chosen].flatten(1, 2).detach()

        return {
            'feature': pick(dn_feature),
            'anchor': pick(dn_anchor),
            'cls_target': pick(dn['dn_cls_target']),
            'valid_mask': pick(dn['dn_valid_mask']),
            'padding_mask': pick(dn['dn_padding_mask']),
            'id_target': pick(dn['dn_id_target']),
            'per_group': count // groups,
        }

    def padded_ground_truth(
        self, gt_ids: list[Tensor], gt_anchors: list[Tensor], device
    ) -> tuple[Tensor, Tensor]:
        """Per-sample instance ids and encoded boxes -> ``update_dn``'s ``current``: ids
        [B, M] int64 padded with -2 (no carried id matches it), boxes [B, M, 11] padded with
        0, on ``device``; with ``static_dn_width`` M is at least ``max_dn_gt`` (one shape
        whatever the batch holds, as a CUDA graph's signature needs; more padding changes
        no result)."""
        min_length = self.max_dn_gt if self.static_dn_width else 1
        ids = pad_sequence(gt_ids, -2, device, min_length).long()
        return ids, pad_sequence(gt_anchors, 0.0, device, min_length)

    def update_dn(
        self,
        dn_feature: Tensor,
        dn_anchor: Tensor,
        dn: dict,
        cached: dict,
        temp_valid: Tensor,
        current: tuple[Tensor, Tensor],
    ):
        """Put the carried groups (anchors already moved to this frame) in place of the first
        fresh groups of the samples whose temporal cache is valid and whose carried groups
        hold any row (upstream replaces them with empty groups too).

        A carried positive keeps its class and regresses to the current box of the same
        instance id; one whose object has left gets no loss (upstream's rule); carried
        negatives stay negatives.

        Args:
            current: this frame's ground truth as ``padded_ground_truth`` gives it, made
                before the decoders: this runs between two of them and copies nothing from
                the host (a CUDA graph of the decoders can hold it).

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
        padding = fit(cached['padding_mask'], True)
        ids = fit(cached['id_target'], -1)
        # Match carried queries to this frame's objects by instance id, all samples at once.
        current_ids, current_anchors = current
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
        # A sample whose carried groups hold no row (no ground truth last frame) keeps its
        # fresh ones: what it trains on then depends on its own frames alone, not on
        # whether another sample of its batch (its process's part) had boxes to carry.
        carries_rows = (~padding).any(dim=1)
        use = (temp_valid.to(dn_anchor.device) & carries_rows)[:, None]

        def merge(fresh: Tensor, carried: Tensor) -> Tensor:
            keep = use.reshape(batch, *([1] * (fresh.dim() - 1)))
            head = torch.where(keep, carried.to(fresh.dtype), fresh[:, :span])
            return torch.cat([head, fresh[:, span:]], dim=1)

        updated = dict(dn)
        updated['dn_cls_target'] = merge(dn['dn_cls_target'], cls_target)
        updated['dn_box_target'] = merge(dn['dn_box_target'], box_target)
        updated['dn_valid_mask'] = merge(dn['dn_valid_mask'], valid)
        updated['dn_padding_mask'] = merge(dn['dn_padding_mask'], padding)
        updated['dn_id_target'] = merge(dn['dn_id_target'], ids)
        return merge(dn_feature, feature), merge(dn_anchor, anchor), updated
