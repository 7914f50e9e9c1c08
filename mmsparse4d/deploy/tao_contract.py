"""NVIDIA TAO's Sparse4D ONNX contract (deployable_v2.2): the second table of a frame
graph's inputs and outputs, next to our own (``graph_io``).

It is what TAO's export (``nvidia_tao_pytorch/cv/sparse4d/utils/onnx_export.py``) writes
and what NVIDIA's deployment stack (tao-deploy's Sparse4D engine builder and runner)
checks: ``tools/export.py --contract tao-v2.2`` writes it (``TaoFrameGraph``). Read from
TAO's export code and tao-deploy's contract checks:

* sizes: 6 decoders, 900 queries, 600 carried, 256 channels, 11-D anchors
  (``CONTRACT_SIZES``; tao-deploy refuses any other);
* the inputs in TAO's order, dynamic axes ``batch_size`` (every input) and ``num_cams``
  (images and cameras), traced with one sample of 20 cameras at opset 17;
* ``timestamp`` is an input of TAO's exporter that no node reads: the exporter prunes it
  (``PRUNED_INPUTS``), as TAO's own export does; tao-deploy accepts the graph with or
  without it;
* the 12 outputs: ``classification1`` and ``quality1`` of the stage whose scores choose the
  queries the cache joins (TAO's first stage), ``classification2`` and ``quality2`` of the
  last, every stage's ``prediction``, and the full final query set (the host keeps the top
  600 as the cache);
* no frame interval input: the refinement's interval is baked in.

Symbols as in ``graph_io``, with TAO's axis name ``batch_size`` for the batch;
``num_classes`` is the model's.

Not established from the public code: that NGC's deployable_v2.2 file came from this
export, or from which version of it (TAO 6.25.10's has no sanitising chain in front of
nv::MSDA, the newer file has); the class count and order of NGC's model; the names TAO's
file gives its output dimensions (its exporter leaves them to shape inference, this export
declares the table's); the nv::MSDA TensorRT plugin's source (tao-deploy only probes that it
rejects NaN, infinity, 0, 1 and out-of-range locations).
"""

from torch import nn

from ..utils.input_error import InputError
from .graph_io import BOOL, F32, GraphTensor
from .names import TAO_CONTRACT

CONTRACT_SIZES = {
    'num_decoder': 6,
    'num_anchor': 900,
    'num_temp_instances': 600,
    'embed_dims': 256,
    'anchor_dim': 11,
}
_QUERIES, _CACHED, _CHANNELS, _ANCHOR = (
    CONTRACT_SIZES[key] for key in ('num_anchor', 'num_temp_instances', 'embed_dims', 'anchor_dim')
)
# TAO's traced example: one sample ("single BEV frame") of a dummy 20 cameras.
TRACE_BATCH, TRACE_CAMS = 1, 20

# name, shape, dtype, what it holds (TAO's order)
INPUTS = tuple(
    GraphTensor(*row)
    for row in (
        ('img', ('batch_size', 'num_cams', 3, 'height', 'width'), F32, 'normalised images'),
        ('timestamp', ('batch_size',), F32, 'seconds; read by no node (pruned)'),
        ('projection_mat', ('batch_size', 'num_cams', 4, 4), F32, 'model frame to pixels'),
        ('image_wh', ('batch_size', 'num_cams', 2), F32, '(W, H) of img, pixels'),
        ('input_cached_feature', ('batch_size', _CACHED, _CHANNELS), F32, "the cache's features"),
        ('input_cached_anchor', ('batch_size', _CACHED, _ANCHOR), F32, 'its anchors, moved here'),
        ('prev_exists', ('batch_size',), F32, '1: the cache is valid, 0: zeros (cold start)'),
        ('interval_mask', ('batch_size', 1, 1), BOOL, 'the time gap allows the merge'),
    )
)
INPUT_NAMES = tuple(spec.name for spec in INPUTS)
PRUNED_INPUTS = ('timestamp',)
# The inputs an exported graph has, in order.
GRAPH_INPUT_NAMES = tuple(name for name in INPUT_NAMES if name not in PRUNED_INPUTS)
INPUT_SPECS = {spec.name: spec for spec in INPUTS}


def _per_query(name: str, width: int | str, doc: str) -> GraphTensor:
    return GraphTensor(name, ('batch_size', _QUERIES, width), F32, doc)


OUTPUTS = (
    _per_query('classification1', 'num_classes', "class logits of the merge's stage"),
    _per_query('classification2', 'num_classes', 'class logits of the last stage'),
    *(
        _per_query(f'prediction{stage}', _ANCHOR, f'anchors of stage {stage} (model frame)')
        for stage in range(1, CONTRACT_SIZES['num_decoder'] + 1)
    ),
    _per_query('quality1', 2, "centerness and yawness logits of the merge's stage"),
    _per_query('quality2', 2, 'centerness and yawness logits of the last stage'),
    _per_query('output_cached_feature', _CHANNELS, 'final features (the host keeps 600)'),
    _per_query('output_cached_anchor', _ANCHOR, 'final anchors (the host keeps 600)'),
)
OUTPUT_NAMES = tuple(spec.name for spec in OUTPUTS)
OUTPUT_SPECS = {spec.name: spec for spec in OUTPUTS}


def dynamic_axes() -> dict[str, dict[int, str]]:
    """The export's ``dynamic_axes`` of every input."""
    return {spec.name: spec.dynamic_axes for spec in INPUTS}


def model_sizes(detector: nn.Module) -> dict[str, int]:
    """The model's values of ``CONTRACT_SIZES``' keys."""
    head = detector.head
    bank = head.instance_bank
    return {
        'num_decoder': int(head.num_decoder),
        'num_anchor': int(bank.num_anchor),
        'num_temp_instances': int(bank.num_temp_instances),
        'embed_dims': int(bank.embed_dims),
        'anchor_dim': int(bank.anchor.shape[-1]),
    }


def check_contract(detector: nn.Module) -> None:
    """Refuse, in one line, a model that cannot meet the contract: a size of
    ``CONTRACT_SIZES`` that differs, or an aggregation that would not export as the
    ``nv::MSDA`` node the deploy stack counts (one per decoder).

    Raises:
        InputError: naming each mismatch with the model's value and the contract's.
    """
    sizes = model_sizes(detector)
    problems = [
        f'{key} is {value} in the model, the contract needs {CONTRACT_SIZES[key]}'
        for key, value in sizes.items()
        if value != CONTRACT_SIZES[key]
    ]
    aggregations = [layer.aggregation for layer in detector.head.deformable_layers]
    if len(aggregations) != sizes['num_decoder']:
        problems.append(
            f'the model has {len(aggregations)} aggregation layers in {sizes["num_decoder"]} '
            'decoders, the contract needs one per decoder (one nv::MSDA node each)'
        )
    implementations = sorted({module.implementation for module in aggregations} - {'compiled'})
    if implementations:
        problems.append(
            f'the aggregation implementation is {", ".join(implementations)} in the model, the '
            "contract needs 'compiled' (exported as nv::MSDA; set "
            "model.head.deformable_model.implementation='compiled')"
        )
    if detector.head.instance_bank.new_query_exclusion is not None:
        problems.append(
            'instance_bank.new_query_exclusion is set in the model, the contract carries no '
            'confidences into the graph (set model.head.instance_bank.new_query_exclusion=None)'
        )
    if problems:
        raise InputError(f'the model does not meet contract {TAO_CONTRACT}: ' + '; '.join(problems))
