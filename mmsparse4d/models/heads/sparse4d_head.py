"""The Sparse4D v3 head: a stack of decoder layers driven by ``operation_order``."""

from collections.abc import Callable, Sequence

import torch
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from ...registry import MODELS, TASK_UTILS
from ..layers import KeyPointsGenerator
from ..task_modules import denoising_attention_mask
from ..utils import float32_under_autocast
from ..utils.cuda_graph_region import CudaGraphRegion, run_graphed
from .operation_order import check_operation_order, default_operation_order
from .sparse4d_head_losses import Sparse4DHeadLosses


@MODELS.register_module()
class Sparse4DHead(Sparse4DHeadLosses, BaseModule):
    """Decoder stack over the instance bank's queries.

    Per frame: queries from the instance bank (+ denoising queries in training), then the
    operations of ``operation_order``: ``temp_gnn`` (decoupled cross-attention to the
    previous frame's cached instances; self-attention for samples without a valid cache),
    ``gnn`` (decoupled self-attention, denoising groups masked), ``norm``, ``ffn``,
    ``deformable`` (feature aggregation over cameras) and ``refine`` (new anchors, class
    logits, quality). After the ``num_single_frame_decoder``-th refine the cached instances
    take their slots; at the end the bank caches the best instances and, at inference,
    assigns track ids.

    Args:
        instance_bank, anchor_encoder, graph_model, temp_graph_model, norm_layer, ffn,
            deformable_model, refine_layer: configs of the building blocks (one module per
            entry of ``operation_order``).
        sampler: SparseBox3DTarget config (matching and denoising); decoder:
            SparseBox3DDecoder config.
        loss_cls, loss_reg: classification and box/quality losses.
        num_decoder: refine stages; num_single_frame_decoder: stages before the cache joins.
        operation_order: list of operations (default: Sparse4D v3's).
        reg_weights: [11] per-dimension weights of the box loss.
        cls_threshold_to_reg: box loss only for matched queries scoring above it.
        reid_branch: optional config of a module adding re-identification outputs and
            losses (see projects/sparse4d); built from MODELS.
        first_frame_temporal_value: the values of ``temp_gnn`` on a frame without a cache,
            where it is a self-attention: ``'feature'`` (``fc_before`` of the features, as
            every other attention) or ``'query'`` (the 2C query itself: upstream Sparse4D's
            and NVIDIA TAO's, a compatibility setting for their checkpoints).
        float32_under_autocast: inside an autocast region (mixed-precision training, a
            half-precision CUDA graph) the head runs in float32, its feature maps cast once:
            no per-layer casts (``models/utils/float32_region.py``). Without autocast it
            changes nothing.
        cuda_graphs: in training on a CUDA device, run the decoder loop and the
            re-identification branch (forward and backward) as CUDA graphs, captured once
            per input signature (cameras, denoising width, whether a cache and carried
            groups come in): ``models/utils/cuda_graph_region.py``. False, True or a dict of
            ``CudaGraphRegion``'s arguments (``max_graphs``, ``warmup``). The same
            operations as without it: only their launches leave the host.
        graphed_losses: with ``cuda_graphs``, also the stage and denoising losses after
            the matching (the re-identification losses stay eager); False keeps them eager.
    """

    def __init__(
        self,
        instance_bank,
        anchor_encoder,
        graph_model,
        norm_layer,
        ffn,
        deformable_model,
        refine_layer,
        sampler,
        decoder,
        loss_cls,
        loss_reg,
        temp_graph_model=None,
        num_decoder=6,
        num_single_frame_decoder=1,
        operation_order=None,
        reg_weights=(2.0, 2.0, 2.0) + (1.0,) * 8,
        cls_threshold_to_reg=0.05,
        reid_branch=None,
        first_frame_temporal_value='feature',
        float32_under_autocast=False,
        cuda_graphs=False,
        graphed_losses=True,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        self.float32_under_autocast = float32_under_autocast
        if first_frame_temporal_value not in ('feature', 'query'):
            raise ValueError(
                "Sparse4DHead: first_frame_temporal_value must be 'feature' or 'query', got "
                f'{first_frame_temporal_value!r}'
            )
        self.first_frame_temporal_value = first_frame_temporal_value
        if operation_order is None:
            operation_order = default_operation_order(num_decoder, num_single_frame_decoder)
        self.operation_order = list(operation_order)
        check_operation_order(
            self.operation_order, num_decoder, num_single_frame_decoder, temp_graph_model
        )
        self.num_decoder, self.num_single_frame_decoder = num_decoder, num_single_frame_decoder
        self.instance_bank = MODELS.build(instance_bank)
        self.anchor_encoder = MODELS.build(anchor_encoder)
        configs = {
            'temp_gnn': temp_graph_model,
            'gnn': graph_model,
            'norm': norm_layer,
            'ffn': ffn,
            'deformable': deformable_model,
            'refine': refine_layer,
        }
        self.layers = ModuleList(MODELS.build(configs[op]) for op in self.operation_order)
        self.sampler = TASK_UTILS.build(sampler)
        self.decoder = TASK_UTILS.build(decoder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_reg = MODELS.build(loss_reg)
        self.register_buffer(
            'reg_weights', torch.tensor(reg_weights, dtype=torch.float32), persistent=False
        )
        self.cls_threshold_to_reg = cls_threshold_to_reg
        self.reid_branch = MODELS.build(reid_branch) if reid_branch is not None else None
        self.dn_cache = None
        # Training: the instance id each cached query was matched to (temporal alignment).
        self.cached_gt_ids = None
        self.decoder_graphs = self.reid_graphs = self.loss_graphs = None
        if cuda_graphs:
            options = cuda_graphs if isinstance(cuda_graphs, dict) else {}
            self.decoder_graphs = CudaGraphRegion('Sparse4DHead decoders', **options)
            if graphed_losses:
                self.loss_graphs = CudaGraphRegion('Sparse4DHead losses', **options)
            if self.reid_branch is not None:
                self.reid_graphs = CudaGraphRegion('Sparse4DHead re-identification', **options)

    def init_weights(self) -> None:
        for op, layer in zip(self.operation_order, self.layers, strict=True):
            if op == 'refine':
                continue
            for parameter in layer.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_uniform_(parameter)
        # Then every block's own initialisation (zero aggregation weights, class prior, ...).
        super().init_weights()

    @property
    def deformable_layers(self) -> list[nn.Module]:
        """The feature aggregation layers (the ``deformable`` operations), in order."""
        return [
            layer
            for op, layer in zip(self.operation_order, self.layers, strict=True)
            if op == 'deformable'
        ]

    @property
    def max_num_cams(self) -> int:
        """The most cameras a frame may have: the smallest limit of the aggregation layers."""
        return min(layer.max_num_cams for layer in self.deformable_layers)

    def reset_temporal_state(self) -> None:
        """Forget the cache, the tracks and the carried denoising groups."""
        self.instance_bank.reset()
        self.decoder.reset()
        self.dn_cache = self.cached_gt_ids = None

    @float32_under_autocast
    def run_decoders(
        self,
        feature: Tensor,
        anchor: Tensor,
        time_interval: Tensor,
        feature_maps: Sequence[Tensor],
        projection_mat: Tensor,
        image_wh: Tensor,
        cached_feature: Tensor | None,
        cached_anchor: Tensor | None,
        temp_valid: Tensor | None,
        all_valid: bool = False,
        all_stage_scores: bool = False,
        camera_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        after_merge: Callable[..., tuple[Tensor, Tensor, Tensor]] | None = None,
        prev_exists: Tensor | None = None,
        cached_confidence: Tensor | None = None,
    ) -> dict:
        """The decoder loop of one frame, with the cache passed in: what the head's
        ``forward`` and the exported frame graph both run. It reads no state and never waits
        for the device (the graph is traced and captured from it).

        Args:
            feature: [B, A (+ D), C] queries (and D denoising ones); anchor: [B, A (+ D), 11].
            time_interval: [B] seconds since each sample's previous frame.
            feature_maps, projection_mat, image_wh, camera_mask: as in ``forward``.
            cached_feature: [B, T, C]; cached_anchor: [B, T, 11] moved to this frame; both
                None without any valid cache (then ``temp_valid`` is not read).
            temp_valid: [B] bool, the samples whose cache is valid.
            all_valid: a host flag: every sample's cache is valid (the temporal attention
                then skips its fallback); False when unknown (the graph).
            all_stage_scores: every decoder computes its class and quality scores; else
                only the last one and the one whose scores choose the queries the cache
                joins.
            attn_mask: [A + D, A + D] or per sample [B, A + D, A + D] bool, True where
                attention is blocked (denoising).
            after_merge: called with the merged (features, anchors) and ``attn_mask`` after
                the cache joined; returns the three for the decoders that follow (the head's
                denoising carries its own queries there).
            prev_exists: [B] float, NVIDIA's export contract (``deploy/tao_contract.py``):
                the merged queries are weighed against this frame's, merged * w +
                current * (1 - w), and the cache's anchor embeddings are scaled by it once
                they are the merged queries'. None: ``temp_valid`` alone decides.
            cached_confidence: [B, T] the cache's confidences, read by the bank's
                ``new_query_exclusion`` (None where that is off).

        Returns:
            dict: per refine stage lists ``classification`` [B, A (+ D), K] (None where not
            computed), ``prediction`` [B, A (+ D), 11] and ``quality``; the final
            ``instance_feature`` [B, A (+ D), C] and ``anchor`` [B, A (+ D), 11].
        """
        merge_stage = self.num_single_frame_decoder - 1
        num_cached = self.instance_bank.num_temp_instances
        value_is_query = self.first_frame_temporal_value == 'query'
        anchor_embed = self.anchor_encoder(anchor)
        cached_embed = self.anchor_encoder(cached_anchor) if cached_feature is not None else None
        out = {'classification': [], 'prediction': [], 'quality': []}
        last_index = len(self.operation_order) - 1
        for index, (op, layer) in enumerate(zip(self.operation_order, self.layers, strict=True)):
            if op == 'temp_gnn' and cached_feature is None:
                feature = layer(
                    feature, anchor_embed, attn_mask=attn_mask, value_is_query=value_is_query
                )
            elif op == 'temp_gnn':
                # Cross-attention to the cache; samples without a valid cache attend to the
                # current queries instead (nothing stale, nothing from another scene).
                cross = layer(feature, anchor_embed, cached_feature, cached_embed)
                if not all_valid:
                    alone = layer(
                        feature, anchor_embed, attn_mask=attn_mask, value_is_query=value_is_query
                    )
                    cross = torch.where(temp_valid[:, None, None], cross, alone)
                feature = cross
            elif op == 'gnn':
                feature = layer(feature, anchor_embed, attn_mask=attn_mask)
            elif op in ('norm', 'ffn'):
                feature = layer(feature)
            elif op == 'deformable':
                feature = layer(
                    feature,
                    anchor,
                    anchor_embed,
                    feature_maps,
                    projection_mat,
                    image_wh,
                    camera_mask,
                )
            else:
                stage = len(out['prediction'])
                last = index == last_index
                return_cls = all_stage_scores or last or stage == merge_stage
                anchor, cls, quality = layer(
                    feature, anchor, anchor_embed, time_interval, return_cls
                )
                out['prediction'].append(anchor)
                out['classification'].append(cls)
                out['quality'].append(quality)
                if stage == merge_stage and cached_feature is not None:
                    merged = self.instance_bank.merge_cache(
                        feature,
                        anchor,
                        cls,
                        cached_feature,
                        cached_anchor,
                        temp_valid,
                        cached_confidence,
                    )
                    if prev_exists is not None:
                        weight = prev_exists[:, None, None]
                        merged = [
                            new * weight + old * (1 - weight)
                            for new, old in zip(merged, (feature, anchor), strict=True)
                        ]
                    feature, anchor = merged
                    if after_merge is not None:
                        feature, anchor, attn_mask = after_merge(feature, anchor, attn_mask)
                if not last:
                    anchor_embed = self.anchor_encoder(anchor)
                if stage > merge_stage and cached_embed is not None:
                    cached_embed = anchor_embed[:, :num_cached]
                    if prev_exists is not None:
                        cached_embed = cached_embed * prev_exists[:, None, None]
        out['instance_feature'], out['anchor'] = feature, anchor
        return out

    def decode_frame(
        self,
        inputs: dict,
        carry: tuple[dict, dict, tuple[Tensor, Tensor]] | None,
        num_anchor: int,
        all_valid: bool,
    ) -> tuple[dict, dict | None]:
        """``run_decoders`` on one frame's ``inputs`` (its tensor arguments by name), the
        carried denoising groups joining after the merge: what ``forward`` runs, eagerly or
        as CUDA graphs (a function of tensors and constants, without side effects).

        Args:
            carry: (this frame's denoising targets, the carried groups as ``cache_dn`` gave
                them, this frame's ground truth as ``padded_ground_truth`` gives it), or None
                without carried groups.
            num_anchor: the queries before the denoising ones.
            all_valid: as in ``run_decoders``.

        Returns:
            ``run_decoders``' outputs and the denoising targets once the carried groups
            joined (None without carried groups).
        """
        merged = {'targets': None}
        after_merge = None
        if carry is not None:
            dn, dn_carried, current = carry

            def after_merge(feature: Tensor, anchor: Tensor, attn_mask: Tensor):
                dn_feature, dn_anchor, merged['targets'] = self.sampler.update_dn(
                    feature[:, num_anchor:],
                    anchor[:, num_anchor:],
                    dn,
                    dn_carried,
                    inputs['temp_valid'],
                    current,
                )
                return (
                    torch.cat([feature[:, :num_anchor], dn_feature], dim=1),
                    torch.cat([anchor[:, :num_anchor], dn_anchor], dim=1),
                    denoising_attention_mask(num_anchor, merged['targets']),
                )

        out = self.run_decoders(
            **inputs,
            all_valid=all_valid,
            all_stage_scores=self.training,
            after_merge=after_merge,
        )
        return out, merged['targets']

    @float32_under_autocast
    def forward(
        self,
        feature_maps: Sequence[Tensor],
        projection_mat: Tensor,
        image_wh: Tensor,
        timestamps: Tensor,
        scenes: Sequence[str],
        camera_mask: Tensor | None = None,
        level_features: list[Tensor] | None = None,
        gt: dict | None = None,
        world_to_frame: Tensor | None = None,
    ) -> dict:
        """
        Args:
            feature_maps: (features [B, N*sum(HW), C], spatial_shape [N, L, 2],
                scale_start_index [N, L]) packed by the detector.
            projection_mat: [B, N, 4, 4]; image_wh: [B, N, 2]; camera_mask: [B, N] bool.
            timestamps: [B] seconds; scenes: [B] scene (camera group) names.
            level_features: per level [B, N, C, H, W], for the re-identification branch.
            gt: training targets (``labels``, ``anchors`` encoded [M, 11], ``ids`` per
                sample); enables denoising queries in training.
            world_to_frame: [B, 4, 4] the frame's coordinates from the world's when they
                change between frames (training's global rotation); the cache follows.

        Returns:
            dict: per refine stage lists ``classification`` [B, A, K] (None where not
            computed), ``prediction`` [B, A, 11], ``quality`` [B, A, 2]; the final
            ``instance_feature`` [B, A, C]; ``instance_id`` [B, A] at inference; denoising
            outputs and targets in training; the re-identification branch's outputs.
        """
        batch = projection_mat.shape[0]
        bank = self.instance_bank.get(batch, timestamps, scenes, world_to_frame=world_to_frame)
        feature, anchor = bank['instance_feature'], bank['anchor']
        cached_feature, temp_valid = bank['cached_feature'], bank['temp_valid']
        interval = bank['time_interval']
        num_anchor = anchor.shape[1]
        # Under TAO's temporal validity every sample attends to its cache, stale or not
        # (``InstanceBank``). The bank decides validity on the host: no wait for the device.
        all_valid = cached_feature is not None and (
            self.instance_bank.temporal_validity == 'tao' or bank['all_temp_valid']
        )
        dn, attn_mask, dn_carried = None, None, None
        carrying = self.dn_cache is not None and len(self.dn_cache['anchor']) == batch
        if self.training and gt is not None:
            # From the host copy of the ground truth where the detector gives one.
            source = gt.get('host', gt)
            dn = self.sampler.get_dn_anchors(
                source['labels'],
                source['anchors'],
                source['ids'],
                device=feature.device,
                # Groups as wide as the carried ones, which then replace them whole.
                min_per_group=self.dn_cache['per_group'] if carrying else 0,
            )
        if dn is not None:
            count = dn['dn_anchor'].shape[1]
            feature = torch.cat([feature, feature.new_zeros(batch, count, feature.shape[-1])], 1)
            anchor = torch.cat([anchor, dn['dn_anchor']], dim=1)
            attn_mask = denoising_attention_mask(num_anchor, dn)
            if carrying:
                dn_carried = dict(self.dn_cache)
                # Padded here, not between the decoders: no host copy inside their loop.
                current = self.sampler.padded_ground_truth(gt['ids'], gt['anchors'], anchor.device)
                dn_carried['anchor'] = KeyPointsGenerator.anchor_projection(
                    dn_carried['anchor'], interval, bank['transform']
                )
        self.dn_cache = None
        decoder_inputs = {
            'feature': feature,
            'anchor': anchor,
            'time_interval': interval,
            'feature_maps': feature_maps,
            'projection_mat': projection_mat,
            'image_wh': image_wh,
            'cached_feature': cached_feature,
            'cached_anchor': bank['cached_anchor'],
            'temp_valid': temp_valid,
            'camera_mask': camera_mask,
            'attn_mask': attn_mask,
            'cached_confidence': bank['cached_confidence'],
        }
        carry = (dn, dn_carried, current) if dn_carried is not None else None
        decoded = (decoder_inputs, carry, num_anchor, all_valid)
        out, merged_targets = run_graphed(self.decoder_graphs, self.decode_frame, self, *decoded)
        if merged_targets is None:
            merged_targets = dn
        feature, anchor = out.pop('instance_feature'), out.pop('anchor')
        # The targets of each stage: the carried denoising queries join after the merge.
        out['dn_targets'] = [
            dn if stage < self.num_single_frame_decoder else merged_targets
            for stage in range(self.num_decoder)
        ]
        dn = merged_targets
        out['prior_gt_ids'] = self._prior_gt_ids(batch, num_anchor, cached_feature, temp_valid)
        if dn is not None:
            out['dn_classification'] = [
                c[:, num_anchor:] if c is not None else None for c in out['classification']
            ]
            out['dn_prediction'] = [p[:, num_anchor:] for p in out['prediction']]
            if self.training:
                self.dn_cache = self.sampler.cache_dn(
                    dn, feature[:, num_anchor:], anchor[:, num_anchor:]
                )
        out['classification'] = [
            c[:, :num_anchor] if c is not None else None for c in out['classification']
        ]
        out['prediction'] = [p[:, :num_anchor] for p in out['prediction']]
        out['quality'] = [q[:, :num_anchor] if q is not None else None for q in out['quality']]
        feature, anchor = feature[:, :num_anchor], anchor[:, :num_anchor]
        out['instance_feature'] = feature
        self.instance_bank.cache(feature, anchor, out['classification'][-1])
        if not self.training:
            out['instance_id'] = self.instance_bank.get_instance_id(
                out['classification'][-1], self.decoder.score_threshold
            )
        if self.reid_branch is not None:
            reid_inputs = (feature, anchor, level_features, projection_mat, image_wh, camera_mask)
            out.update(run_graphed(self.reid_graphs, self.reid_outputs, self, *reid_inputs))
        return out

    @float32_under_autocast
    def reid_outputs(
        self,
        feature: Tensor,
        anchor: Tensor,
        level_features: list[Tensor],
        projection_mat: Tensor,
        image_wh: Tensor,
        camera_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """The re-identification branch on the final queries (features [B, A, C], anchors
        [B, A, 11]), sampling with the last aggregation layer."""
        last_deformable = max(i for i, op in enumerate(self.operation_order) if op == 'deformable')
        return self.reid_branch(
            feature,
            anchor,
            self.anchor_encoder(anchor),
            self.layers[last_deformable],
            level_features,
            projection_mat,
            image_wh,
            camera_mask,
        )

    def _prior_gt_ids(self, batch, num_anchor, cached_feature, temp_valid) -> Tensor | None:
        """[B, A] instance id each carried query was matched to last frame (-1 elsewhere)."""
        ids = self.cached_gt_ids
        if not self.training or ids is None or cached_feature is None or len(ids) != batch:
            return None
        prior = ids.new_full((batch, num_anchor), -1)
        prior[:, : ids.shape[1]] = torch.where(temp_valid[:, None], ids, -1)
        return prior

    def predict(self, out: dict, origins: Tensor | None = None) -> list[dict]:
        """Decoded results per sample (``SparseBox3DDecoder.decode``'s schema): boxes in
        the frame the head works in, or in world coordinates with ``origins`` [B, 3]
        (metres, each sample's frame centre)."""
        extra = {}
        if self.reid_branch is not None:
            extra = {k: out[k] for k in self.reid_branch.output_keys if k in out}
        valid = self.instance_bank.valid
        return self.decoder.decode(
            out['classification'][-1],
            out['prediction'][-1],
            out['quality'][-1],
            out.get('instance_id'),
            out['instance_feature'],
            extra,
            restart=~valid if valid is not None else None,
            first_new_id=self.instance_bank.first_new_id,
            origin=origins,
        )
