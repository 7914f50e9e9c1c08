"""The Sparse4D v3 head's training losses: every refining stage's classification, box and
denoising losses from one matching, and the re-identification branch's."""

import torch
from torch import Tensor, nn

from ..utils import float32_under_autocast, global_mean_denominator, pad_sequence
from ..utils.cuda_graph_region import run_graphed


class Sparse4DHeadLosses:
    """``Sparse4DHead.loss`` and its parts, for the head to inherit. They read the head's
    ``sampler``, ``loss_cls``, ``loss_reg``, ``reg_weights``, ``cls_threshold_to_reg``,
    ``num_single_frame_decoder``, ``instance_bank`` and ``reid_branch``, and keep the
    matched instance ids in ``cached_gt_ids`` for the next frame's alignment."""

    @float32_under_autocast
    def loss(self, out: dict, gt: dict) -> dict[str, Tensor]:
        """Per refine stage ``loss_cls_i``, ``loss_box_i``, ``loss_cns_i``, ``loss_yns_i``;
        with denoising ``loss_cls_dn_i``, ``loss_box_dn_i``; the re-identification branch's
        losses on the last stage's matches."""
        losses = {}
        assigned = None
        stages = [stage for stage, cls in enumerate(out['classification']) if cls is not None]
        prior = out.get('prior_gt_ids')
        if stages:
            inputs = [
                (
                    out['classification'][stage],
                    out['prediction'][stage],
                    prior if stage >= self.num_single_frame_decoder else None,
                )
                for stage in stages
            ]
            # Every stage is matched with one wait for the device, not one per stage.
            matches = self.sampler.match_stages(inputs, gt['labels'], gt['anchors'], gt['ids'])
            losses.update(self._stage_losses(out, stages, matches))
            assigned = matches[3][-1]
        if assigned is not None:
            self._remember_matches(assigned, gt['ids'])
        if self.reid_branch is not None and assigned is not None:
            losses.update(self.reid_branch.loss(out, assigned, gt))
        return losses

    def _remember_matches(self, assigned: Tensor, gt_ids: list[Tensor]) -> None:
        """Instance ids of the queries the bank just cached, for next frame's alignment."""
        index = self.instance_bank.cache_index
        if index is None:
            self.cached_gt_ids = None
            return
        padded = pad_sequence(gt_ids, -1, assigned.device).long()
        query_ids = torch.where(assigned >= 0, padded.gather(1, assigned.clamp(min=0)), -1)
        self.cached_gt_ids = query_ids.gather(1, index)

    def _stage_losses(self, out: dict, stages: list[int], matches: tuple) -> dict[str, Tensor]:
        """Every stage's classification, box and denoising losses, named per stage: scored
        in one pass over the stages stacked ([S, B, A, ...]) rather than a pass per stage
        (the same values with a quarter of the losses' operations, most a small kernel on a
        GPU: 696 to 180 dispatched, views included, in the small model's forward), through
        ``loss_graphs`` (the head's CUDA graphs of the losses; None: eagerly).

        ``matches``: ``match_stages``' targets, stacked over the stages. The predictions are
        stacked here, eagerly: one input per kind for the graphs, not one per stage. The
        denominators are reduced across processes here too, so that no collective sits in
        a capture and the graphs serve data-parallel training as well.
        """
        count = len(stages)
        cls_target, box_target, box_weight, assigned = matches
        positive = assigned >= 0
        targets = {
            'cls': cls_target,
            'box': box_target,
            'box_weight': box_weight,
            'positive': positive,
            'num_pos': global_mean_denominator(positive.flatten(1).sum(1)),
        }
        predictions = {
            'cls': torch.stack([out['classification'][stage] for stage in stages]),
            'box': torch.stack([out['prediction'][stage] for stage in stages]),
            'quality': self._stacked_quality(out, stages),
        }
        if out.get('dn_classification') is not None:
            dn_targets = [out['dn_targets'][stage] for stage in stages]
            valid = torch.stack([t['dn_valid_mask'] for t in dn_targets])
            targets.update(
                dn_valid=valid,
                dn_cls=torch.stack([t['dn_cls_target'] for t in dn_targets]),
                dn_box=torch.stack([t['dn_box_target'] for t in dn_targets]),
                num_dn=global_mean_denominator(valid.flatten(1).sum(1)),
            )
            predictions.update(
                dn_cls=torch.stack([out['dn_classification'][stage] for stage in stages]),
                dn_box=torch.stack([out['dn_prediction'][stage] for stage in stages]),
            )
        elif self.sampler.num_dn_groups > 0:
            # This process's part of the batch holds no ground truth to denoise, another's
            # may: take part in the reduction of its denoising count, so that the processes'
            # collectives stay paired.
            global_mean_denominator(positive.new_zeros(count, dtype=torch.float32))
        per_stage = run_graphed(
            self.loss_graphs,
            self._stacked_stage_losses,
            self._loss_modules(),
            predictions,
            targets,
            self.reg_weights,
            self.cls_threshold_to_reg,
        )
        # Unbound, not indexed per stage: an index's gradient is a zero-filled tensor each.
        per_stage = {name: value.unbind() for name, value in per_stage.items()}
        losses = {}
        for index, stage in enumerate(stages):
            losses.update({f'{name}_{stage}': value[index] for name, value in per_stage.items()})
        return losses

    @staticmethod
    def _stacked_quality(out: dict, stages: list[int]) -> Tensor | None:
        """The stages' quality estimates [S, B, A, 2], or None where no stage has them."""
        qualities = [out['quality'][stage] for stage in stages]
        if all(q is None for q in qualities):
            return None
        if any(q is None for q in qualities):
            raise ValueError('Sparse4DHead: every refining stage or none estimates quality')
        return torch.stack(qualities)

    def _loss_modules(self) -> nn.Module:
        """The modules whose parameters the losses use, in the head's training mode: a loss
        with learnable weights gets their gradients through the graphs too."""
        modules = nn.ModuleList([self.loss_cls, self.loss_reg])
        modules.training = self.training
        return modules

    def _stacked_stage_losses(
        self,
        predictions: dict,
        targets: dict,
        reg_weights: Tensor,
        cls_threshold_to_reg: float,
    ) -> dict[str, Tensor]:
        """The stage and denoising losses, each [S]. A function of its arguments alone (no
        wait for the device, no host data, no collective): a CUDA graph can hold it. The
        loss modules' settings (weights, gamma, ...) are read when it is captured: a hook
        that changes them during training calls ``loss_graphs.reset()``.

        Args:
            predictions: ``cls`` [S, B, A, K], ``box`` [S, B, A, 11], ``quality``
                [S, B, A, 2] or None; with denoising ``dn_cls`` [S, B, D, K] and ``dn_box``
                [S, B, D, 11].
            targets: the matches' ``cls`` [S, B, A], ``box`` [S, B, A, 11], ``box_weight``
                [S, B, A, 11], ``positive`` [S, B, A] and ``num_pos`` [S] (the reduced
                denominators); with denoising ``dn_valid`` [S, B, D], ``dn_cls``, ``dn_box``
                and ``num_dn`` [S].
            reg_weights: [11] the box loss's per-dimension weights.
            cls_threshold_to_reg: the box loss only for matched queries scoring above it.
        """
        cls, box, quality = predictions['cls'], predictions['box'], predictions['quality']
        count, num_pos = cls.shape[0], targets['num_pos']
        loss_cls = self.loss_cls(
            cls.flatten(0, 2), targets['cls'].flatten(), avg_factor=num_pos, groups=count
        )
        regress = targets['positive'] & (cls.max(dim=-1).values.sigmoid() > cls_threshold_to_reg)
        # Masks instead of boolean indexing: no host sync.
        box_losses = self.loss_reg(
            box.flatten(0, 2),
            targets['box'].flatten(0, 2),
            (targets['box_weight'] * reg_weights * regress[..., None]).flatten(0, 2),
            avg_factor=num_pos,
            quality=None if quality is None else quality.flatten(0, 2),
            mask=regress.flatten(),
            groups=count,
        )
        losses = {'loss_cls': loss_cls, **box_losses}
        if 'dn_cls' in predictions:
            losses.update(self._dn_losses(predictions, targets, reg_weights))
        return losses

    def _dn_losses(
        self, predictions: dict, targets: dict, reg_weights: Tensor
    ) -> dict[str, Tensor]:
        """``loss_cls_dn`` and ``loss_box_dn``, each [S]: the denoising queries' losses of
        the stages stacked, scored in one pass (arguments as ``_stacked_stage_losses``)."""
        cls, box = predictions['dn_cls'], predictions['dn_box']
        count, valid, num_dn = cls.shape[0], targets['dn_valid'], targets['num_dn']
        positive = valid & (targets['dn_cls'] >= 0)
        weight = reg_weights * positive[..., None]
        return {
            'loss_cls_dn': self.loss_cls(
                cls.flatten(0, 2),
                targets['dn_cls'].flatten(),
                weight=valid.flatten().to(cls.dtype),
                avg_factor=num_dn,
                groups=count,
            ),
            'loss_box_dn': self.loss_reg(
                box.flatten(0, 2),
                targets['dn_box'].flatten(0, 2),
                weight.flatten(0, 2),
                avg_factor=num_dn,
                groups=count,
            )['loss_box'],
        }
