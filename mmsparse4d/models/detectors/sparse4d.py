"""Sparse4D: image backbone and neck per camera, then the sparse query head."""

import numpy as np
import torch
from mmdet3d.models.detectors import Base3DDetector
from mmengine.structures import InstanceData
from torch import Tensor

from ...registry import MODELS
from ...structures import encode_box
from ..utils import pack_feature_maps, to_device
from ..utils.cuda_graph_region import CudaGraphRegion, run_graphed


@MODELS.register_module()
class Sparse4D(Base3DDetector):
    """Multi-camera 3D detection and tracking.

    ``img`` [B, N, 3, H, W] -> (GridMask in training) -> backbone + neck on the B*N images
    -> levels [B, N, C, H_l, W_l] packed for the aggregation op -> head. An optional dense
    depth branch on the first levels adds an auxiliary loss in training.

    Predictions are per sample ``pred_instances_3d`` in ``SparseBox3DDecoder.decode``'s
    schema: ``bboxes_3d`` [M, 10] (x, y, z, w, l, h, yaw, vx, vy, vz) in **world**
    coordinates (the decoder adds the camera group's ``origin`` back), ``scores_3d``,
    ``labels_3d``, ``cls_scores``, ``track_ids`` (from 1) and ``instance_feats`` [M, C] (plus
    what a re-identification branch adds).

    Args:
        img_backbone: e.g. ``dict(type='mmdet.ResNet', depth=50, ...)``.
        img_neck: e.g. ``dict(type='mmdet.FPN', ...)``; None feeds the backbone's outputs on.
        head: Sparse4DHead config.
        depth_branch: DenseDepthNet config (training only; needs ``focal`` and
            ``depth_targets`` in the inputs).
        grid_mask: GridMask config (training only), None to disable.
        data_preprocessor: default Sparse4DDataPreprocessor.
        cuda_graphs: in training on a CUDA device, run the backbone and neck (forward and
            backward) as CUDA graphs, one per count of images (``CudaGraphRegion``), and
            the head's as its ``cuda_graphs`` says (this value where the head's config does
            not set it). False, True or a dict of ``CudaGraphRegion``'s arguments.
    """

    def __init__(
        self,
        img_backbone,
        head,
        img_neck=None,
        depth_branch=None,
        grid_mask=None,
        data_preprocessor=None,
        cuda_graphs=False,
        init_cfg=None,
    ):
        if data_preprocessor is None:
            data_preprocessor = dict(type='Sparse4DDataPreprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.img_backbone = MODELS.build(img_backbone)
        self.img_neck = MODELS.build(img_neck) if img_neck is not None else None
        if cuda_graphs and head.get('cuda_graphs') is None:
            head = dict(head, cuda_graphs=cuda_graphs)
        self.head = MODELS.build(head)
        self.image_graphs = None
        if cuda_graphs:
            options = cuda_graphs if isinstance(cuda_graphs, dict) else {}
            self.image_graphs = CudaGraphRegion('Sparse4D backbone and neck', **options)
        self.depth_branch = MODELS.build(depth_branch) if depth_branch is not None else None
        self.grid_mask = MODELS.build(grid_mask) if grid_mask is not None else None

    def extract_feat(self, inputs: dict) -> tuple[list[Tensor], list[Tensor]]:
        """Feature levels per camera [B, N, C, H_l, W_l] and the same levels flattened to
        [B*N, C, H_l, W_l].

        With ``real_cameras`` [R] (the data preprocessor's indices of the real images among
        the B*N where a sample is padded) the backbone and neck see the real images only
        and padded cameras get zero features: in training, padding images would enter the
        batch norms' statistics (a batch of 4- to 12-camera samples is a third padding on
        average) and cost backbone time; nothing is sampled from a padded camera."""
        img = inputs['img']
        if img.dim() != 5:
            raise ValueError(f'Sparse4D: img must be [B, N, 3, H, W], got {tuple(img.shape)}')
        batch, cams = img.shape[:2]
        images = img.flatten(0, 1)
        real = inputs.get('real_cameras')
        if real is not None:
            images = images.index_select(0, real)
        if self.grid_mask is not None and self.training:
            images = self.grid_mask(images)
        flat = run_graphed(self.image_graphs, self.image_features, self, images)
        if real is not None:
            flat = [
                level.new_zeros(batch * cams, *level.shape[1:]).index_copy(0, real, level)
                for level in flat
            ]
        levels = [level.reshape(batch, cams, *level.shape[1:]) for level in flat]
        return levels, flat

    def image_features(self, images: Tensor) -> list[Tensor]:
        """Backbone and neck: images [I, 3, H, W] -> levels [I, C, H_l, W_l]."""
        features = self.img_backbone(images)
        if self.img_neck is not None:
            features = self.img_neck(features)
        return list(features)

    def _head_forward(self, inputs: dict, data_samples, gt: dict | None = None):
        levels, flat = self.extract_feat(inputs)
        scenes = [sample.metainfo.get('scene_name', '') for sample in data_samples]
        out = self.head(
            pack_feature_maps(levels),
            inputs['projection_mat'],
            inputs['image_wh'],
            inputs['timestamp'],
            scenes,
            inputs.get('camera_mask'),
            levels,
            gt,
            self._world_to_frame(data_samples, inputs['img'].device),
        )
        return out, flat

    @staticmethod
    def _world_to_frame(data_samples, device) -> Tensor | None:
        """[B, 4, 4] from the metainfo's ``rotation_3d`` (GlobalRotation3D rotates each
        training frame differently; the instance bank moves its cache along), else None.
        Built on the host and moved in one copy."""
        rotations = [sample.metainfo.get('rotation_3d') for sample in data_samples]
        if all(rotation is None for rotation in rotations):
            return None
        out = np.tile(np.eye(4, dtype=np.float32), (len(rotations), 1, 1))
        for index, rotation in enumerate(rotations):
            if rotation is not None:
                out[index, :3, :3] = np.asarray(
                    rotation.cpu() if torch.is_tensor(rotation) else rotation
                )
        return to_device(out, device)

    @staticmethod
    def targets(data_samples, device) -> dict:
        """Per sample ``labels`` [M], ``anchors`` [M, 11] (encoded boxes with velocity),
        ``ids`` [M], ``asset_ids`` [M] and ``visibility`` [M, N] from ``gt_instances_3d``,
        and ``largest_asset_id`` (int; -1 without asset ids); ``host``: ``labels``,
        ``anchors`` and ``ids`` as they are on the host (the denoising groups are built there,
        and reading them back from the device would wait for it).

        Each field of the whole batch is concatenated where the samples hold it (the host,
        as the data preprocessor leaves them), moved in one copy and split into per-sample
        views: one transfer per field instead of one per sample and field, and one box
        encoding for the batch."""
        for sample in data_samples:
            if 'gt_instances_3d' not in sample:
                raise KeyError(
                    f'Sparse4D: sample {sample.metainfo.get("token", "?")} has no '
                    'gt_instances_3d (training needs annotations)'
                )
        instances = [sample.gt_instances_3d for sample in data_samples]
        counts = [len(gt.bboxes_3d) for gt in instances]

        def host_values(key: str) -> list[Tensor]:
            return [torch.as_tensor(gt[key]) for gt in instances]

        def moved(values: list[Tensor]) -> list[Tensor]:
            # Flattened: per-sample shapes may differ beyond the first dimension
            # (visibility [M, N] with each sample's own camera count).
            joined = to_device(torch.cat([value.reshape(-1) for value in values]), device)
            parts = joined.split([value.numel() for value in values])
            return [part.reshape(value.shape) for part, value in zip(parts, values, strict=True)]

        boxes = torch.cat([torch.as_tensor(gt.bboxes_3d)[:, :7].float() for gt in instances])
        velocity = torch.cat(
            [
                torch.as_tensor(gt.velocities).float().reshape(count, 3)
                for gt, count in zip(instances, counts, strict=True)
            ]
        )
        # Encoded on the host: the denoising groups are built there from the same values.
        anchors = encode_box(torch.cat([boxes, velocity], dim=-1))
        host = {
            'anchors': list(anchors.split(counts)),
            'labels': [value.long() for value in host_values('labels_3d')],
            'ids': [value.long() for value in host_values('instance_ids')],
        }
        gt = {
            'anchors': list(to_device(anchors, device).split(counts)),
            'labels': moved(host['labels']),
            'ids': moved(host['ids']),
            'host': host,
        }
        for key in ('asset_ids', 'visibility'):
            present = [key in instance for instance in instances]
            if all(present):
                gt[key] = moved(host_values(key))
            else:  # per sample, None where the sample lacks it
                gt[key] = [
                    to_device(instance[key], device) if key in instance else None
                    for instance in instances
                ]
        # Read here, on the host: a loss that reads it from the device would wait for it.
        gt['largest_asset_id'] = max(
            (
                int(torch.as_tensor(instance.asset_ids).max())
                for instance in instances
                if 'asset_ids' in instance and len(instance.asset_ids)
            ),
            default=-1,
        )
        return gt

    def loss(self, inputs: dict, data_samples) -> dict[str, Tensor]:
        gt = self.targets(data_samples, inputs['img'].device)
        out, flat = self._head_forward(inputs, data_samples, gt)
        losses = self.head.loss(out, gt)
        if self.depth_branch is not None and inputs.get('depth_targets') is not None:
            if inputs.get('focal') is None:
                raise KeyError(
                    'Sparse4D: the depth branch needs inputs["focal"] '
                    '(PackSparse4DInputs packs it from the intrinsics)'
                )
            depth = self.depth_branch(flat, inputs['focal'].flatten())
            losses['loss_dense_depth'] = self.depth_branch.loss(depth, inputs['depth_targets'])
        return losses

    def predict(self, inputs: dict, data_samples):
        out, _ = self._head_forward(inputs, data_samples)
        origins = torch.as_tensor(
            np.array([sample.metainfo.get('origin', (0.0, 0.0, 0.0)) for sample in data_samples]),
            dtype=torch.float32,
        ).reshape(-1, 3)
        results = self.head.predict(out, origins)
        for sample, result in zip(data_samples, results, strict=True):
            pred = InstanceData()
            for name, value in result.items():
                pred[name] = value
            sample.pred_instances_3d = pred
        return data_samples

    def _forward(self, inputs: dict, data_samples=None):
        """The head's raw outputs (no decoding)."""
        if data_samples is None:
            raise ValueError('Sparse4D: tensor mode needs data_samples (scene names)')
        return self._head_forward(inputs, data_samples)[0]
