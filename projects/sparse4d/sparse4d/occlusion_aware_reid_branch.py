"""Re-identification outputs of the outside-in model: per-camera features at the key points,
fused with predicted visibility (occlusion-aware embedding), through a BNNeck."""

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmsparse4d.models.utils import pad_sequence
from mmsparse4d.registry import MODELS

from .per_camera_features import sample_per_camera


@MODELS.register_module()
class OcclusionAwareReIDBranch(BaseModule):
    """Plugged into ``Sparse4DHead(reid_branch=...)``; runs after the last decoder layer.

    For each instance: the last deformable layer's sampling (learned key points only, as
    NVIDIA's ReID sampling) gives per-camera features [B, A, N, C]; ``visibility_net`` scores
    each camera (0..1); ``embedding`` fuses the cameras with those scores (the paper's
    equation 2); ``bnneck`` gives id logits and the re-identification feature.

    Outputs: ``reid_feats`` [B, A, C], ``id_logits`` [B, A, num_ids], ``visibility``
    [B, A, N]. Losses (on the last stage's matched queries): ``loss_id`` against asset ids,
    ``loss_visibility`` against the visible-area ratio per camera.

    Args:
        visibility_net, embedding, bnneck, loss_id, loss_visibility: registered configs,
            swappable by config; a config without ``type`` adjusts the default module (with
            this branch's ``embed_dims`` and ``num_ids``), one with ``type`` is built as given.
        learned_points_only: sample only the learned key points (NVIDIA's choice).
    """

    output_keys = ('reid_feats', 'visibility')

    def __init__(
        self,
        embed_dims=256,
        num_ids=70,
        visibility_net=None,
        embedding=None,
        bnneck=None,
        loss_id=None,
        loss_visibility=None,
        learned_points_only=True,
        init_cfg=None,
    ):
        super().__init__(init_cfg)

        def build(config, default):
            config = dict(config or {})
            return MODELS.build(config if 'type' in config else {**default, **config})

        self.visibility_net = build(
            visibility_net, {'type': 'VisibilityNet', 'embed_dims': embed_dims}
        )
        self.embedding = build(embedding, {'type': 'OcclusionAwareEmbedding'})
        self.bnneck = build(
            bnneck, {'type': 'BNNeck', 'embed_dims': embed_dims, 'num_ids': num_ids}
        )
        self.loss_id = build(loss_id, {'type': 'LabelSmoothIDLoss'})
        self.loss_visibility = build(loss_visibility, {'type': 'VisibilityLoss'})
        self.learned_points_only = learned_points_only

    def forward(
        self,
        feature: Tensor,
        anchor: Tensor,
        anchor_embed: Tensor,
        deformable,
        level_features: list[Tensor],
        projection_mat: Tensor,
        image_wh: Tensor,
        camera_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        if level_features is None:
            raise ValueError('OcclusionAwareReIDBranch: the head needs level_features')
        locations, weights = deformable.sampling(
            feature, anchor, anchor_embed, projection_mat, image_wh, camera_mask
        )
        if self.learned_points_only:
            fixed = len(deformable.kps_generator.fix_scale)
            locations, weights = locations[:, :, fixed:], weights[:, :, fixed:]
        camera_features = sample_per_camera(level_features, locations, weights)
        visibility = self.visibility_net(camera_features)
        seen = ((locations > 0) & (locations < 1)).all(-1).any(2)  # [B, A, N]
        if camera_mask is not None:
            seen = seen & camera_mask[:, None]
        fused = self.embedding(camera_features, visibility, seen)
        batch, anchors = fused.shape[:2]
        logits, reid = self.bnneck(fused.flatten(0, 1))
        return {
            'reid_feats': reid.reshape(batch, anchors, -1),
            'id_logits': logits.reshape(batch, anchors, -1),
            'visibility': visibility,
        }

    def loss(self, out: dict, assigned: Tensor, gt: dict) -> dict[str, Tensor]:
        """assigned: [B, A] matched ground-truth index (-1 unmatched); gt: ``asset_ids``
        [M] and ``visibility`` [M, N_b] per sample."""
        logits, visibility = out['id_logits'], out['visibility']
        batch, cams = visibility.shape[0], visibility.shape[-1]
        if any(x is None for x in gt['asset_ids']) or any(x is None for x in gt['visibility']):
            raise KeyError(
                'OcclusionAwareReIDBranch: training needs gt asset_ids and '
                'visibility (tools/create_data.py writes them)'
            )
        matched = assigned >= 0
        index = assigned.clamp(min=0)
        asset_ids = pad_sequence([ids.long() for ids in gt['asset_ids']], -1, logits.device)
        # Visibility ratios [M_b, N_b]: cameras differ per sample, so pad both axes.
        ratios = visibility.new_zeros((batch, asset_ids.shape[1], cams), dtype=torch.float32)
        has_ratio = torch.zeros_like(ratios)
        for b, ratio in enumerate(gt['visibility']):
            ratios[b, : len(ratio), : ratio.shape[1]] = ratio.float()
            has_ratio[b, : len(ratio), : ratio.shape[1]] = 1.0
        id_targets = torch.where(matched, asset_ids.gather(1, index), -1)
        wide = index[..., None].expand(-1, -1, cams)
        vis_target = ratios.gather(1, wide)
        vis_mask = has_ratio.gather(1, wide) * matched[..., None]
        return {
            'loss_id': self.loss_id(
                logits.flatten(0, 1), id_targets.flatten(), gt.get('largest_asset_id')
            ),
            'loss_visibility': self.loss_visibility(
                visibility.flatten(0, 1), vis_target.flatten(0, 1), vis_mask.flatten(0, 1)
            ),
        }
