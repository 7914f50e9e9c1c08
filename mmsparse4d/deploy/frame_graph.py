"""The network of one tracking frame as a pure function of its inputs: what ONNX exports.

The instance bank's state lives outside: the host (``DeployTracker``) passes the cache in
and gets the full final query set back. Inside the graph are the backbone, the neck, the
decoders and the bank's ``update`` (top A - T current queries after the cached ones);
outside are the confidence decay, the top-T caching, the anchor propagation, the track ids
and the decoding. The graph equals ``Sparse4DHead.forward`` at inference for a cache that
is valid and for none (``prev_exists`` 0: the temporal attention attends to the current
queries, as the head does without a cache; NVIDIA's export differs there at cold start).

Inputs (B samples, N cameras, T carried instances, C channels):
    img [B, N, 3, H, W] normalised; projection_mat [B, N, 4, 4]; image_wh [B, N, 2] (W, H);
    input_cached_feature [B, T, C]; input_cached_anchor [B, T, 11] (already moved to this
    frame); prev_exists [B] float (1: the cache is from this scene's previous frame);
    interval_mask [B, 1, 1] bool (``time_interval`` is usable; else the default interval);
    time_interval [B] seconds since the previous frame (NVIDIA bakes 1/30 s in). The last
    two only where the refinement divides its velocity output by the interval (upstream's
    and NVIDIA's models); a model whose velocity output is in m/s
    (``velocity_per_second=True``) does not read them and its graph has no such inputs
    (``graph_input_names``).

Outputs: per decoder i (1-based) ``classification{i}`` [B, A, K], ``prediction{i}``
    [B, A, 11], ``quality{i}`` [B, A, 2]; the final instance features
    ``output_cached_feature`` [B, A, C] and anchors ``output_cached_anchor`` [B, A, 11] (the
    host keeps the top T as the cache); and the re-identification branch's outputs, if any.
"""

import torch
from torch import Tensor, nn

from ..models.utils import pack_feature_maps

INPUT_NAMES = (
    'img',
    'projection_mat',
    'image_wh',
    'input_cached_feature',
    'input_cached_anchor',
    'prev_exists',
    'interval_mask',
    'time_interval',
)

INTERVAL_INPUTS = ('interval_mask', 'time_interval')


def graph_input_names(head: nn.Module) -> tuple[str, ...]:
    """The frame graph's inputs for this head: ``INPUT_NAMES`` without the interval pair
    where no refinement reads the frame interval (every one says ``velocity_per_second``;
    a refinement without that attribute is taken to read it)."""
    refinements = [
        layer for op, layer in zip(head.operation_order, head.layers, strict=True) if op == 'refine'
    ]
    if refinements and all(getattr(layer, 'velocity_per_second', False) for layer in refinements):
        return tuple(name for name in INPUT_NAMES if name not in INTERVAL_INPUTS)
    return INPUT_NAMES


class Sparse4DFrameGraph(nn.Module):
    """Wraps a built (and loaded) ``Sparse4D`` detector; shares its modules.

    Args:
        all_stages: every decoder's classification, prediction and quality are outputs (the
            exported graph's interface, as NVIDIA's). False keeps only the last decoder's
            (what tracking reads) and skips the class and quality heads of the decoders in
            between (computed only where the cache merge needs the scores), as the head does
            at inference: a CUDA-graph frame then runs and copies less.

    Raises:
        ValueError: for settings the graph does not support (no carried instances).
    """

    def __init__(self, detector: nn.Module, all_stages: bool = True):
        super().__init__()
        self.all_stages = all_stages
        head = detector.head
        if head.instance_bank.num_temp_instances <= 0:
            raise ValueError(
                'Sparse4DFrameGraph: the model carries no instances '
                '(instance_bank.num_temp_instances = 0); nothing to export as a '
                'tracking graph'
            )
        self.detector = detector
        self.head = head
        reid = head.reid_branch
        self.reid_keys = tuple(reid.output_keys) if reid is not None else ()

    @property
    def input_names(self) -> tuple[str, ...]:
        """The inputs an exported graph has (``forward`` takes all of ``INPUT_NAMES``)."""
        return graph_input_names(self.head)

    @property
    def output_names(self) -> tuple[str, ...]:
        stages = self.head.num_decoder
        first = 1 if self.all_stages else stages
        names = [
            f'{kind}{i}'
            for kind in ('classification', 'prediction', 'quality')
            for i in range(first, stages + 1)
        ]
        names += ['output_cached_feature', 'output_cached_anchor']
        return (*names, *self.reid_keys)

    def forward(
        self,
        img: Tensor,
        projection_mat: Tensor,
        image_wh: Tensor,
        input_cached_feature: Tensor,
        input_cached_anchor: Tensor,
        prev_exists: Tensor,
        interval_mask: Tensor,
        time_interval: Tensor,
    ) -> tuple[Tensor, ...]:
        head, bank = self.head, self.head.instance_bank
        levels, _ = self.detector.extract_feat({'img': img})
        feature_maps = pack_feature_maps(levels)
        batch = img.shape[0]
        feature = bank.instance_feature[None].expand(batch, -1, -1)
        anchor = bank.anchor[None].expand(batch, -1, -1)
        valid = prev_exists.reshape(-1, 1, 1) > 0.5
        interval = torch.where(
            interval_mask.reshape(-1),
            time_interval,
            torch.full_like(time_interval, bank.default_time_interval),
        )
        anchor_embed = head.anchor_encoder(anchor)
        cached_feature = input_cached_feature
        cached_embed = head.anchor_encoder(input_cached_anchor)
        num_cached = bank.num_temp_instances
        classification, prediction, quality = [], [], []
        operations = list(zip(head.operation_order, head.layers, strict=True))
        for index, (op, layer) in enumerate(operations):
            if op == 'temp_gnn':
                cross = layer(feature, anchor_embed, cached_feature, cached_embed)
                alone = layer(feature, anchor_embed)
                feature = torch.where(valid, cross, alone)
            elif op != 'refine':
                feature = head.apply_layer(
                    op, layer, feature, anchor, anchor_embed, feature_maps, projection_mat, image_wh
                )
            else:
                stage = len(prediction)
                last = index == len(operations) - 1
                merge = stage == head.num_single_frame_decoder - 1
                anchor, cls, qt = layer(
                    feature, anchor, anchor_embed, interval, self.all_stages or last or merge
                )
                prediction.append(anchor)
                classification.append(cls)
                quality.append(qt)
                if stage == head.num_single_frame_decoder - 1:
                    feature, anchor = bank.merge_cache(
                        feature, anchor, cls, cached_feature, input_cached_anchor, valid
                    )
                if index < len(operations) - 1:
                    anchor_embed = head.anchor_encoder(anchor)
                if stage + 1 > head.num_single_frame_decoder:
                    cached_embed = anchor_embed[:, :num_cached]
        if not self.all_stages:
            classification, prediction, quality = classification[-1:], prediction[-1:], quality[-1:]
        outputs = [*classification, *prediction, *quality, feature, anchor]
        if head.reid_branch is not None:
            extra = head.reid_branch(
                feature,
                anchor,
                head.anchor_encoder(anchor),
                head.layers[self._last_deformable()],
                levels,
                projection_mat,
                image_wh,
                None,
            )
            outputs += [extra[key] for key in self.reid_keys]
        return tuple(outputs)

    def _last_deformable(self) -> int:
        return max(i for i, op in enumerate(self.head.operation_order) if op == 'deformable')
