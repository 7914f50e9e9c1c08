"""Deformable feature aggregation: sample every camera's feature maps at the projections of
each anchor's key points, weighted per camera, level, point and channel group."""

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...ops import MultiScaleDeformableAggregation
from ...registry import MODELS
from .linear_relu_ln import linear_relu_ln

# Points this close to (or behind) a camera's image plane are not projected: upstream clamps
# the depth to 1e-5, which sends points behind a camera to arbitrary pixels of its image.
MIN_DEPTH = 1e-5
# What happens to a key point behind a camera: 'skip' (no sample) or 'clamp_depth' (upstream
# Sparse4D's and NVIDIA TAO's projection, kept to run their checkpoints as they were
# trained: the depth clamped to MIN_DEPTH, the point lands wherever that puts it and is
# sampled if that is inside the image).
BEHIND_CAMERA = ('skip', 'clamp_depth')


def project_points(
    points: Tensor, projection_mat: Tensor, image_wh: Tensor, behind_camera: str = 'skip'
) -> Tensor:
    """Key points [B, A, P, 3] -> normalised image coordinates [B, A, P, N, 2] (x along
    the width); with ``behind_camera='skip'``, (-1, -1) for points behind a camera
    (outside (0, 1): they contribute nothing to the aggregation).

    Args:
        projection_mat: [B, N, 4, 4] world (or group frame) to homogeneous pixels.
        image_wh: [B, N, 2] image (W, H) in pixels.
        behind_camera: one of ``BEHIND_CAMERA``.
    """
    # Pixel coordinates need at least float32: under bf16 autocast the einsum would round
    # x ~ 500 px to steps of 2-4 px.
    dtype = torch.promote_types(points.dtype, torch.float32)
    with torch.autocast(points.device.type, enabled=False):
        points, projection_mat = points.to(dtype), projection_mat.to(dtype)
        homogeneous = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
        pixels = torch.einsum('bnij,bapj->bapni', projection_mat, homogeneous)
    depth = pixels[..., 2:3]
    in_front = depth > MIN_DEPTH
    xy = pixels[..., :2] / depth.clamp(min=MIN_DEPTH) / image_wh.to(dtype)[:, None, None]
    if behind_camera == 'clamp_depth':
        return xy
    return torch.where(in_front, xy, torch.full_like(xy, -1.0))


@MODELS.register_module()
class DeformableFeatureAggregation(BaseModule):
    """[B, A, C] instance features -> aggregated features ([B, A, C], or [B, A, 2C] with
    ``residual_mode='cat'``).

    Weights come from instance feature + anchor embedding, with a camera embedding of each
    projection matrix (its first three rows, 12 numbers) when ``use_camera_embed``; they are
    softmaxed jointly over cameras, levels and points, per group. Without the camera
    embedding, weights_fc has one slot per camera up to ``max_num_cams`` and the first N are
    used. The camera count is whatever ``projection_mat`` holds; cameras that only pad a
    batch (``camera_mask`` False) get no weight.

    Args:
        kps_generator: config of the key point generator (a copy is built; the dict given
            is not modified).
        camera_encoder: config of a registered module mapping ``projection_mat`` [B, N, 4, 4]
            and ``image_wh`` [B, N, 2] to [B, N, C]; overrides ``use_camera_embed``'s MLP over
            the 12 raw numbers.
        attn_drop: in training, drops whole (camera, point) weights with this probability.
        implementation: of the aggregation op, ``'compiled'``, ``'reference'`` or
            ``'grid_sample'`` (``MultiScaleDeformableAggregation``; the last is TAO's path
            without its compiled op, a compatibility setting).
        behind_camera: key points behind a camera are ``'skip'``-ped, or projected with the
            depth clamped (``'clamp_depth'``, upstream's and TAO's behaviour: a
            compatibility setting for their checkpoints, see ``BEHIND_CAMERA``).
    """

    def __init__(
        self,
        embed_dims=256,
        num_groups=8,
        num_levels=4,
        max_num_cams=20,
        kps_generator=None,
        use_camera_embed=True,
        camera_encoder=None,
        residual_mode='add',
        proj_drop=0.0,
        attn_drop=0.0,
        implementation='compiled',
        behind_camera='skip',
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        if behind_camera not in BEHIND_CAMERA:
            raise ValueError(
                f'DeformableFeatureAggregation: behind_camera must be one of {BEHIND_CAMERA}, '
                f'got {behind_camera!r}'
            )
        self.behind_camera = behind_camera
        if embed_dims % num_groups:
            raise ValueError(
                f'DeformableFeatureAggregation: embed_dims {embed_dims} must be divisible by '
                f'num_groups {num_groups}'
            )
        if residual_mode not in ('add', 'cat'):
            raise ValueError(
                "DeformableFeatureAggregation: residual_mode must be 'add' or 'cat', "
                f'got {residual_mode!r}'
            )
        kps = dict(type='KeyPointsGenerator', embed_dims=embed_dims, **dict(kps_generator or {}))
        self.kps_generator = MODELS.build(kps)
        self.num_pts = self.kps_generator.num_pts
        self.embed_dims, self.num_groups, self.num_levels = embed_dims, num_groups, num_levels
        self.max_num_cams, self.residual_mode, self.attn_drop = (
            max_num_cams,
            residual_mode,
            attn_drop,
        )
        per_camera = num_groups * num_levels * self.num_pts
        self.camera_module = None
        if camera_encoder is not None:
            self.camera_module = MODELS.build({'embed_dims': embed_dims, **camera_encoder})
        if use_camera_embed or camera_encoder is not None:
            self.camera_encoder = (
                linear_relu_ln(embed_dims, 1, 2, 12) if camera_encoder is None else None
            )
            self.weights_fc = nn.Linear(embed_dims, per_camera)
        else:
            self.camera_encoder = None
            self.weights_fc = nn.Linear(embed_dims, per_camera * max_num_cams)
        self.aggregation = MultiScaleDeformableAggregation(implementation)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.zeros_(self.weights_fc.weight)  # uniform weights at the start
        nn.init.zeros_(self.weights_fc.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def weights(
        self,
        instance_feature: Tensor,
        anchor_embed: Tensor,
        projection_mat: Tensor,
        image_wh: Tensor | None = None,
        camera_mask: Tensor | None = None,
    ) -> Tensor:
        """Aggregation weights [B, A, P, N, L, G]; camera_mask [B, N] bool."""
        batch, anchors = instance_feature.shape[:2]
        cams = projection_mat.shape[1]
        if cams > self.max_num_cams:
            raise ValueError(
                f'DeformableFeatureAggregation: {cams} cameras, more than '
                f'max_num_cams={self.max_num_cams}'
            )
        feature = instance_feature + anchor_embed
        if self.camera_module is not None or self.camera_encoder is not None:
            if self.camera_module is not None:
                camera = self.camera_module(projection_mat, image_wh)
            else:
                camera = self.camera_encoder(projection_mat[:, :, :3].reshape(batch, cams, 12))
            weights = self.weights_fc(feature[:, :, None] + camera[:, None])
        else:
            weights = self.weights_fc(feature).reshape(batch, anchors, self.max_num_cams, -1)[
                :, :, :cams
            ]
        weights = weights.reshape(batch, anchors, cams, -1, self.num_groups)
        if camera_mask is not None:
            padding = ~camera_mask[:, None, :, None, None]
            weights = weights.masked_fill(padding, float('-inf'))
        # [B, A, N, L * P, G] -> softmax over (N, L, P) per group.
        weights = weights.reshape(batch, anchors, -1, self.num_groups).softmax(dim=-2)
        weights = weights.reshape(
            batch, anchors, cams, self.num_levels, self.num_pts, self.num_groups
        )
        if self.training and self.attn_drop > 0:
            keep = (
                torch.rand(batch, anchors, cams, 1, self.num_pts, 1, device=weights.device)
                >= self.attn_drop
            )
            weights = weights * keep / (1 - self.attn_drop)
        return weights.permute(0, 1, 4, 2, 3, 5).contiguous()

    def sampling(
        self,
        instance_feature: Tensor,
        anchor: Tensor,
        anchor_embed: Tensor,
        projection_mat: Tensor,
        image_wh: Tensor,
        camera_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Sampling locations [B, A, P, N, 2] (normalised, x along the width) and weights
        [B, A, P, N, L, G] of the op."""
        key_points = self.kps_generator(anchor, instance_feature)
        locations = project_points(
            key_points, projection_mat, image_wh, self.behind_camera
        ).contiguous()
        weights = self.weights(
            instance_feature, anchor_embed, projection_mat, image_wh, camera_mask
        )
        return locations, weights

    def forward(
        self,
        instance_feature: Tensor,
        anchor: Tensor,
        anchor_embed: Tensor,
        feature_maps: tuple[Tensor, Tensor, Tensor],
        projection_mat: Tensor,
        image_wh: Tensor,
        camera_mask: Tensor | None = None,
    ) -> Tensor:
        """
        Args:
            instance_feature, anchor_embed: [B, A, C]; anchor: [B, A, 11].
            feature_maps: (features [B, F, C], spatial_shape [N, L, 2],
                scale_start_index [N, L]) as the detector packs them.
            projection_mat: [B, N, 4, 4]; image_wh: [B, N, 2]; camera_mask: [B, N] bool,
                False for cameras that only pad the batch.
        """
        locations, weights = self.sampling(
            instance_feature, anchor, anchor_embed, projection_mat, image_wh, camera_mask
        )
        features, spatial_shape, scale_start_index = feature_maps
        dtype = features.dtype
        out = self.aggregation(
            features, spatial_shape, scale_start_index, locations.to(dtype), weights.to(dtype)
        )
        out = self.proj_drop(self.output_proj(out.to(instance_feature.dtype)))
        if self.residual_mode == 'cat':
            return torch.cat([out, instance_feature], dim=-1)
        return out + instance_feature
