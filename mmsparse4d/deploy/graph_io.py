"""The tracking frame graph's inputs and outputs: one table of names, shapes and dtypes.

Export (input names, dynamic axes, example inputs), the back ends, the tracker's cache
feeds, the metadata and the TensorRT builder all read this table; nothing else states a
name or a shape of the graph.

Shapes are tuples of symbolic dimensions (strings) and fixed sizes (ints). The symbols:
``batch`` (B samples), ``num_cams`` (N cameras), ``height`` and ``width`` (the exported
image size), ``num_temp`` (T carried instances), ``num_anchor`` (A queries),
``embed_dims`` (C channels), ``num_classes`` (K). Only ``batch`` and ``num_cams`` vary in
an exported graph (its dynamic axes); the others are fixed by the model. NVIDIA TAO's
contract, the second table (``tao_contract``), names its batch axis ``batch_size``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..structures import ANCHOR_DIM

DYNAMIC_DIMS = ('batch', 'num_cams', 'batch_size')


@dataclass(frozen=True)
class GraphTensor:
    """One input or output of the frame graph.

    Attributes:
        name: the tensor's name in the exported graph.
        shape: symbolic dimensions (str) and fixed sizes (int), see the module docstring.
        dtype: its dtype.
        doc: what it holds, with units.
    """

    name: str
    shape: tuple[str | int, ...]
    dtype: torch.dtype
    doc: str

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """{axis: symbol} of the dimensions that vary in an exported graph."""
        return {axis: dim for axis, dim in enumerate(self.shape) if dim in DYNAMIC_DIMS}

    def concrete_shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """The shape with every symbol replaced by ``sizes[symbol]``."""
        return tuple(sizes[dim] if isinstance(dim, str) else dim for dim in self.shape)

    @property
    def numpy_dtype(self) -> np.dtype:
        return torch.empty(0, dtype=self.dtype).numpy().dtype


F32, BOOL = torch.float32, torch.bool
# name, shape, dtype, what it holds (the cache is zeros where prev_exists is 0)
INPUTS = tuple(
    GraphTensor(*row)
    for row in (
        ('img', ('batch', 'num_cams', 3, 'height', 'width'), F32, 'normalised images'),
        ('projection_mat', ('batch', 'num_cams', 4, 4), F32, 'model frame (m) to pixels of img'),
        ('image_wh', ('batch', 'num_cams', 2), F32, '(W, H) of img, pixels'),
        ('input_cached_feature', ('batch', 'num_temp', 'embed_dims'), F32, "the cache's features"),
        ('input_cached_anchor', ('batch', 'num_temp', ANCHOR_DIM), F32, 'its anchors, moved here'),
        ('prev_exists', ('batch',), F32, "1: the cache is this scene's previous frame's"),
        ('interval_mask', ('batch', 1, 1), BOOL, 'time_interval is usable (else the default)'),
        ('time_interval', ('batch',), F32, 'seconds since the previous frame'),
        ('input_cached_confidence', ('batch', 'num_temp'), F32, "the cache's confidences"),
    )
)
INPUT_NAMES = tuple(spec.name for spec in INPUTS)
# Read only where a refinement divides its velocity output by the interval.
INTERVAL_INPUTS = ('interval_mask', 'time_interval')
# Read only where the instance bank excludes current queries near confident carried ones.
CONFIDENCE_INPUT = 'input_cached_confidence'
# The inputs that carry the instance bank's state into the graph (``cache_feeds``).
CACHE_INPUTS = INPUT_NAMES[3:]
INPUT_SPECS = {spec.name: spec for spec in INPUTS}

# The final instance features and anchors (the host keeps the top T as the cache).
CACHED_OUTPUTS = (
    GraphTensor('output_cached_feature', ('batch', 'num_anchor', 'embed_dims'), F32, 'features'),
    GraphTensor('output_cached_anchor', ('batch', 'num_anchor', ANCHOR_DIM), F32, 'anchors'),
)
CACHED_FEATURE, CACHED_ANCHOR = (spec.name for spec in CACHED_OUTPUTS)


def stage_outputs(stage: int) -> tuple[GraphTensor, ...]:
    """The outputs of decoder ``stage`` (1-based): class logits, anchors, quality logits."""
    per_query = (
        ('classification', 'num_classes', 'class logits'),
        ('prediction', ANCHOR_DIM, 'anchors (model frame)'),
        ('quality', 2, 'centerness and yawness logits'),
    )
    return tuple(
        GraphTensor(f'{kind}{stage}', ('batch', 'num_anchor', width), F32, doc)
        for kind, width, doc in per_query
    )


def output_names(num_decoder: int, all_stages: bool, reid_keys: Sequence[str]) -> tuple[str, ...]:
    """The graph's outputs in order: per kind (classification, prediction, quality) every
    decoder's (``all_stages``) or the last one's, the cached pair, then the
    re-identification branch's ``reid_keys``."""
    first = 1 if all_stages else num_decoder
    per_stage = [stage_outputs(stage) for stage in range(first, num_decoder + 1)]
    names = [outputs[kind].name for kind in range(3) for outputs in per_stage]
    return (*names, *(spec.name for spec in CACHED_OUTPUTS), *reid_keys)


def decoding_names(num_decoder: int, reid_keys: Sequence[str]) -> tuple[str, ...]:
    """The outputs the tracker's decoding reads: the last decoder's and the final
    features (the cached anchors only feed the bank)."""
    return (
        *(spec.name for spec in stage_outputs(num_decoder)),
        CACHED_FEATURE,
        *reid_keys,
    )


def last_stage(num_decoder: int) -> dict[str, str]:
    """{'classification': name, 'prediction': name, 'quality': name} of the last decoder."""
    kinds = ('classification', 'prediction', 'quality')
    return {kind: spec.name for kind, spec in zip(kinds, stage_outputs(num_decoder), strict=True)}


def graph_input_names(head: nn.Module) -> tuple[str, ...]:
    """The frame graph's inputs for this head: ``INPUT_NAMES`` without the interval pair
    where no refinement reads the frame interval (every one says ``velocity_per_second``;
    a refinement without that attribute is taken to read it), and without the cache's
    confidences unless the instance bank's ``new_query_exclusion`` reads them."""
    refinements = [
        layer for op, layer in zip(head.operation_order, head.layers, strict=True) if op == 'refine'
    ]
    unread = set()
    if refinements and all(getattr(layer, 'velocity_per_second', False) for layer in refinements):
        unread.update(INTERVAL_INPUTS)
    if getattr(head.instance_bank, 'new_query_exclusion', None) is None:
        unread.add(CONFIDENCE_INPUT)
    return tuple(name for name in INPUT_NAMES if name not in unread)


def dynamic_axes(names: Sequence[str]) -> dict[str, dict[int, str]]:
    """The export's ``dynamic_axes`` of the inputs ``names``."""
    return {name: INPUT_SPECS[name].dynamic_axes for name in names}


def input_sizes(metadata: Mapping, batch: int, num_cams: int) -> dict[str, int]:
    """The symbols' sizes of a graph with this ``graph_metadata``."""
    height, width = metadata['image_size']
    return {
        'batch': batch,
        'num_cams': num_cams,
        'height': height,
        'width': width,
        'num_temp': metadata['num_temp_instances'],
        'embed_dims': metadata['embed_dims'],
        'num_anchor': metadata['num_anchor'],
        'num_classes': metadata.get('num_classes', 0),
    }


def input_shapes(metadata: Mapping, batch: int, num_cams: int) -> dict[str, tuple[int, ...]]:
    """{name: concrete shape} of every input for ``batch`` samples of ``num_cams`` cameras."""
    sizes = input_sizes(metadata, batch, num_cams)
    return {spec.name: spec.concrete_shape(sizes) for spec in INPUTS}


def cache_feeds(state: Mapping, num_temp_instances: int, embed_dims: int) -> dict[str, Tensor]:
    """The graph's ``CACHE_INPUTS`` from ``InstanceBank.get``'s state, on its device.

    Args:
        state: ``temp_valid`` [B] bool, ``time_interval`` [B] seconds, ``cached_feature``
            [B, T, C], ``cached_anchor`` [B, T, 11] (moved to this frame) and
            ``cached_confidence`` [B, T] (None without a valid cache: zeros then).
    """
    valid = state['temp_valid']
    sizes = {'batch': len(valid), 'num_temp': num_temp_instances, 'embed_dims': embed_dims}

    def cached(name: str, value: Tensor | None) -> Tensor:
        spec = INPUT_SPECS[name]
        if value is None:
            return torch.zeros(spec.concrete_shape(sizes), dtype=spec.dtype, device=valid.device)
        return value.to(spec.dtype)

    feeds = {
        'input_cached_feature': cached('input_cached_feature', state['cached_feature']),
        'input_cached_anchor': cached('input_cached_anchor', state['cached_anchor']),
        'prev_exists': valid.to(INPUT_SPECS['prev_exists'].dtype),
        'interval_mask': valid.reshape(INPUT_SPECS['interval_mask'].concrete_shape(sizes)),
        'time_interval': state['time_interval'].to(INPUT_SPECS['time_interval'].dtype),
        CONFIDENCE_INPUT: cached(CONFIDENCE_INPUT, state.get('cached_confidence')),
    }
    return {name: feeds[name] for name in CACHE_INPUTS}
