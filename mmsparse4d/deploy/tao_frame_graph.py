"""The tracking frame with NVIDIA TAO's inputs and outputs (``tao_contract``).

The same network and decoder loop as ``Sparse4DFrameGraph`` (``Sparse4DHead.run_decoders``);
only the wiring around them is TAO's, as its export (``utils/onnx_export.py``) has it:

* no interval input: the refinement's frame interval is baked in, the model's
  ``default_time_interval`` (TAO reads its bank's ``time_interval`` outside the trace: the
  bank's default, 0.033333 s in TAO's spec);
* the cache merge: ``where(interval_mask, merged, current)`` weighed by ``prev_exists``,
  merged * p + current * (1 - p); after the merge the cache's anchor embeddings (the
  temporal attention's keys) are scaled by ``prev_exists``;
* the temporal cross-attention always attends to the cache inputs, at a cold start too
  (``prev_exists`` 0 with the host's zeros), where our graph attends to the current
  queries; tao-deploy's README states that cold start follows this zero-cache graph;
* class and quality logits of two stages: the merge's (TAO's first) and the last; no
  re-identification outputs;
* every sampling location not strictly inside (0, 1) on both axes, NaN and infinity
  included, is replaced by 0 in front of each ``nv::MSDA`` node (a Where/And/Greater/Less
  chain, as TAO's newer export sanitises). Our operator rejects exactly those locations
  (0 too), so no output changes; the chain guards a plugin that lets NaN through.

One difference that does not show at TAO's batch of one: TAO multiplies [B, A, C] tensors
by ``prev_exists`` [B] as they are, which broadcasts along the channel axis (right for
B = 1 only); this graph weighs each sample.
"""

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from ..models.utils import pack_feature_maps
from .tao_contract import GRAPH_INPUT_NAMES, OUTPUT_NAMES, check_contract


def sanitise_locations(locations: Tensor) -> Tensor:
    """[..., 2] normalised (x, y) with every pair not strictly inside (0, 1) on both axes
    (NaN and infinity included: their comparisons fail) replaced by (0, 0)."""
    x, y = locations[..., :1], locations[..., 1:]
    inside = ((x > 0) & (x < 1)) & ((y > 0) & (y < 1))
    return torch.where(inside, locations, torch.zeros_like(locations))


def _sanitise_hook(module: nn.Module, args: tuple) -> tuple:
    features, spatial_shape, scale_start_index, locations, weights = args
    return features, spatial_shape, scale_start_index, sanitise_locations(locations), weights


@contextlib.contextmanager
def sanitised_locations(aggregations: Iterable[nn.Module]) -> Iterator[None]:
    """Within the block, ``aggregations`` (``MultiScaleDeformableAggregation``) get their
    sampling locations through ``sanitise_locations``."""
    handles = [module.register_forward_pre_hook(_sanitise_hook) for module in aggregations]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class TaoFrameGraph(nn.Module):
    """Wraps a built (and loaded) ``Sparse4D`` detector; shares its modules.

    Raises:
        InputError: for a model that cannot meet the contract (``check_contract``).
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        check_contract(detector)
        self.detector = detector
        self.head = detector.head
        self.time_interval = float(self.head.instance_bank.default_time_interval)
        self.aggregations = [layer.aggregation for layer in self.head.deformable_layers]

    input_names = GRAPH_INPUT_NAMES
    output_names = OUTPUT_NAMES

    def forward(
        self,
        img: Tensor,
        timestamp: Tensor,
        projection_mat: Tensor,
        image_wh: Tensor,
        input_cached_feature: Tensor,
        input_cached_anchor: Tensor,
        prev_exists: Tensor,
        interval_mask: Tensor,
    ) -> tuple[Tensor, ...]:
        """Inputs and outputs in the order of ``tao_contract.INPUTS`` and ``OUTPUTS``;
        ``timestamp`` is not read."""
        head, bank = self.head, self.head.instance_bank
        levels, _ = self.detector.extract_feat({'img': img})
        batch = img.shape[0]
        with sanitised_locations(self.aggregations):
            out = head.run_decoders(
                *bank.initial_queries(batch),
                img.new_full((batch,), self.time_interval),
                pack_feature_maps(levels),
                projection_mat,
                image_wh,
                input_cached_feature,
                input_cached_anchor,
                interval_mask.reshape(-1),
                all_valid=True,  # attend to the cache inputs whatever they hold
                prev_exists=prev_exists,
            )
        scores = [value for value in out['classification'] if value is not None]
        quality = [value for value in out['quality'] if value is not None]
        return (
            scores[0],
            scores[-1],
            *out['prediction'],
            quality[0],
            quality[-1],
            out['instance_feature'],
            out['anchor'],
        )
