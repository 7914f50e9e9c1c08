"""The Sparse4D v3 head's training losses: every refining stage's classification, box and
denoising losses from one matching, and the re-identification branch's."""

import torch
import torch.distributed as dist
from mmengine.logging import print_log
from torch import Tensor, nn

from ..utils import float32_under_autocast, global_mean_denominator, pad_sequence
from ..utils.cuda_graph_region import CudaGraphRegion, run_graphed

# What the stage and denoising losses read of the head's outputs and denoising targets.
LOSS_INPUTS = ('classification', 'prediction', 'quality', 'dn_classification', 'dn_prediction')
DN_LOSS_TARGETS = ('dn_valid_mask', 'dn_cls_target', 'dn_box_target')


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
            matches = self.sampler.sample_stages(inputs, gt['labels'], gt['anchors'], gt['ids'])
            losses.update(self._stage_losses(out, stages, matches))
            assigned = matches[-1][3]
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

    def _stage_losses(self, out: dict, stages: list[int], matches: list) -> dict[str, Tensor]:
        """Every stage's classification, box and denoising losses, named per stage; scored
        through ``loss_graphs`` (the head's CUDA graphs of the losses) where it has them."""
        inputs = {key: out.get(key) for key in LOSS_INPUTS}
        if out.get('dn_classification') is not None:
            inputs['dn_targets'] = [
                {key: targets[key] for key in DN_LOSS_TARGETS} for targets in out['dn_targets']
            ]
        per_stage = run_graphed(
            self._loss_region(),
            self._stacked_stage_losses,
            self._loss_modules(),
            inputs,
            stages,
            matches,
            self.reg_weights,
        )
        # Unbound, not indexed per stage: an index's gradient is a zero-filled tensor each.
        per_stage = {name: value.unbind() for name, value in per_stage.items()}
        losses = {}
        for index, stage in enumerate(stages):
            losses.update({f'{name}_{stage}': value[index] for name, value in per_stage.items()})
        return losses

    def _loss_modules(self) -> nn.Module:
        """The modules whose parameters the losses use, in the head's training mode: a loss
        with learnable weights gets their gradients through the graphs too."""
        modules = nn.ModuleList([self.loss_cls, self.loss_reg])
        modules.training = self.training
        return modules

    def _loss_region(self) -> CudaGraphRegion | None:
        """The losses' CUDA graphs, or None (eager): also None where several processes
        train, whose losses reduce their denominators across processes (a collective is
        left out of the graphs; said once)."""
        region = getattr(self, 'loss_graphs', None)
        if region is None or not (dist.is_available() and dist.is_initialized()):
            return region
        if dist.get_world_size() > 1:
            if not getattr(self, '_told_losses_eager', False):
                self._told_losses_eager = True
                print_log(
                    f'{region.name}: runs eagerly, not as CUDA graphs: the losses reduce '
                    'their denominators across the processes',
                    'current',
                )
            return None
        return region

    def _stacked_stage_losses(
        self, inputs: dict, stages: list[int], matches: list, reg_weights: Tensor
    ) -> dict[str, Tensor]:
        """The losses of the given stages, each [S]: scored in one pass over the stages
        stacked ([S, B, A, ...]) rather than a pass per stage: the same values with a
        quarter of the losses' operations (most a small kernel on a GPU; 696 to 180
        dispatched, views included, in the small model's forward). A function of its
        arguments alone (no wait for the device, no host data): a CUDA graph can hold it.

        Args:
            inputs: the head's per-stage ``classification``, ``prediction``, ``quality``
                and, with denoising, ``dn_classification``, ``dn_prediction`` and
                ``dn_targets`` (their ``DN_LOSS_TARGETS``).
            matches: per stage (cls_target, box_target, box_weight, assigned).
            reg_weights: [11] the box loss's per-dimension weights.
        """
        count = len(stages)
        cls = torch.stack([inputs['classification'][stage] for stage in stages])
        box = torch.stack([inputs['prediction'][stage] for stage in stages])
        qualities = [inputs['quality'][stage] for stage in stages]
        if any(q is None for q in qualities) and not all(q is None for q in qualities):
            raise ValueError('Sparse4DHead: every refining stage or none estimates quality')
        quality = None if qualities[0] is None else torch.stack(qualities).flatten(0, 2)
        cls_target, box_target, box_weight, assigned = (
            torch.stack(parts) for parts in zip(*matches, strict=True)
        )
        positive = assigned >= 0
        num_pos = global_mean_denominator(positive.flatten(1).sum(1))
        loss_cls = self.loss_cls(
            cls.flatten(0, 2), cls_target.flatten(), avg_factor=num_pos, groups=count
        )
        regress = positive & (cls.max(dim=-1).values.sigmoid() > self.cls_threshold_to_reg)
        # Masks instead of boolean indexing: no host sync.
        box_losses = self.loss_reg(
            box.flatten(0, 2),
            box_target.flatten(0, 2),
            (box_weight * reg_weights * regress[..., None]).flatten(0, 2),
            avg_factor=num_pos,
            quality=quality,
            mask=regress.flatten(),
            groups=count,
        )
        dn_losses = {}
        if inputs.get('dn_classification') is not None:
            dn_losses = self._dn_losses(stages, inputs, reg_weights)
        elif self.sampler.num_dn_groups > 0:
            # This process's part of the batch holds no ground truth to denoise, another's
            # may: take part in the reduction of its denoising count, so that the processes'
            # collectives stay paired.
            global_mean_denominator(positive.new_zeros(count, dtype=torch.float32))
        return {'loss_cls': loss_cls, **box_losses, **dn_losses}

    def _dn_losses(self, stages: list[int], out: dict, reg_weights: Tensor) -> dict[str, Tensor]:
        """``loss_cls_dn`` and ``loss_box_dn``, each [S]: the denoising queries' losses of
        the given stages, scored in one pass."""
        count = len(stages)
        cls = torch.stack([out['dn_classification'][stage] for stage in stages])
        box = torch.stack([out['dn_prediction'][stage] for stage in stages])
        targets = [out['dn_targets'][stage] for stage in stages]
        valid = torch.stack([t['dn_valid_mask'] for t in targets])
        cls_target = torch.stack([t['dn_cls_target'] for t in targets])
        box_target = torch.stack([t['dn_box_target'] for t in targets])
        num_dn = global_mean_denominator(valid.flatten(1).sum(1))
        positive = valid & (cls_target >= 0)
        weight = reg_weights * positive[..., None]
        return {
            'loss_cls_dn': self.loss_cls(
                cls.flatten(0, 2),
                cls_target.flatten(),
                weight=valid.flatten().to(cls.dtype),
                avg_factor=num_dn,
                groups=count,
            ),
            'loss_box_dn': self.loss_reg(
                box.flatten(0, 2),
                box_target.flatten(0, 2),
                weight.flatten(0, 2),
                avg_factor=num_dn,
                groups=count,
            )['loss_box'],
        }
