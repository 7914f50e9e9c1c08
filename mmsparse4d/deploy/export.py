"""Export a trained Sparse4D's tracking frame to ONNX, with our contract
(``Sparse4DFrameGraph``, ``graph_io``) or NVIDIA TAO's (``TaoFrameGraph``,
``tao_contract``)."""

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from mmengine.config import Config

from ..ops.deformable_aggregation_onnx import MSDA_DOMAIN, MSDA_OP_TYPE, export_onnx
from . import tao_contract
from .frame_graph import Sparse4DFrameGraph
from .graph_io import INPUT_NAMES, INPUTS, dynamic_axes, input_shapes
from .metadata import METADATA_KEY, graph_metadata
from .names import CONTRACTS, OUR_CONTRACT, TAO_CONTRACT
from .tao_frame_graph import TaoFrameGraph

# Cameras of the traced example (any count runs): ours, TAO's dummy 20.
TRACE_CAMS = {OUR_CONTRACT: 2, TAO_CONTRACT: tao_contract.TRACE_CAMS}


def example_inputs(metadata: dict, batch: int = 1, num_cams: int = 2) -> dict[str, np.ndarray]:
    """Every input of ``graph_io.INPUTS`` at its shape and dtype: random images, a plausible
    ring of cameras, no cache (zeros) and the default frame interval."""
    shapes = input_shapes(metadata, batch, num_cams)
    feeds = {spec.name: np.zeros(shapes[spec.name], spec.numpy_dtype) for spec in INPUTS}
    height, width = metadata['image_size']
    rng = np.random.default_rng(0)
    feeds['img'] = rng.standard_normal(shapes['img']).astype(feeds['img'].dtype)
    projection = feeds['projection_mat']
    projection[...] = np.eye(4)
    projection[..., 0, 0] = projection[..., 1, 1] = width / 2
    projection[..., 0, 2], projection[..., 1, 2] = width / 2, height / 2
    projection[..., 2, 3] = 10.0
    feeds['image_wh'][...] = (width, height)
    feeds['time_interval'][...] = metadata['default_time_interval']
    return feeds


def tao_example_inputs(
    metadata: dict, batch: int = tao_contract.TRACE_BATCH, num_cams: int = tao_contract.TRACE_CAMS
) -> dict[str, np.ndarray]:
    """Every input of ``tao_contract.INPUTS``: ``example_inputs``' values (the shared
    names have the same shapes), a zero timestamp."""
    feeds = example_inputs(metadata, batch, num_cams)
    timestamp = tao_contract.INPUT_SPECS['timestamp']
    feeds['timestamp'] = np.zeros(timestamp.concrete_shape({'batch_size': batch}), np.float32)
    return {name: feeds[name] for name in tao_contract.INPUT_NAMES}


def export_tracking_graph(
    detector: torch.nn.Module,
    cfg: Config,
    path: str | os.PathLike,
    trace_cams: int | None = None,
    contract: str = OUR_CONTRACT,
) -> onnx.ModelProto:
    """Write ``path``: the frame graph at opset 17 with one ``nv::MSDA`` node per
    aggregation, batch and camera count dynamic, and the host's settings in the metadata
    (``metadata_props['mmsparse4d']``, JSON; a TAO-contract file adds ``contract`` and the
    ``baked_time_interval``).

    Args:
        detector: the built ``Sparse4D`` with its weights loaded.
        cfg: its config (image size, decoder and bank settings).
        trace_cams: cameras of the example the graph is traced with (any count runs);
            default ``TRACE_CAMS`` of the contract.
        contract: one of ``CONTRACTS``: ``'mmsparse4d'`` (ours: ``graph_io``) or
            ``'tao-v2.2'`` (NVIDIA TAO's: ``tao_contract``; a model that cannot meet it
            is refused with an ``InputError``).
    """
    if contract not in CONTRACTS:
        raise ValueError(f'export: contract must be one of {CONTRACTS}, got {contract!r}')
    detector = detector.float().cpu()
    metadata = graph_metadata(detector, cfg)
    trace_cams = TRACE_CAMS[contract] if trace_cams is None else trace_cams
    if not 1 <= trace_cams <= metadata['max_num_cams']:
        raise ValueError(
            f'export: trace_cams must be in [1, {metadata["max_num_cams"]}], got {trace_cams}'
        )
    if contract == TAO_CONTRACT:
        graph = TaoFrameGraph(detector).eval()
        feeds = tao_example_inputs(metadata, num_cams=trace_cams)
        order, axes = tao_contract.INPUT_NAMES, tao_contract.dynamic_axes()
        metadata.update(
            contract=contract,
            input_names=list(graph.input_names),
            reid_keys=[],
            baked_time_interval=graph.time_interval,
        )
    else:
        graph = Sparse4DFrameGraph(detector).eval()
        feeds = example_inputs(metadata, num_cams=trace_cams)
        order, axes = INPUT_NAMES, dynamic_axes(INPUT_NAMES)
    metadata['output_names'] = list(graph.output_names)
    with torch.no_grad():
        # The tracer drops inputs the graph does not read (the interval pair of a model whose
        # velocity is in m/s, TAO's timestamp); the others keep their names.
        proto = export_onnx(
            graph,
            tuple(torch.from_numpy(feeds[name]) for name in order),
            path,
            input_names=order,
            output_names=graph.output_names,
            dynamic_axes=axes,
            exporter='torchscript',
        )
    if contract == TAO_CONTRACT:
        # The table's output shapes, in place of the exporter's generated dimension names.
        _declare_shapes(proto.graph.output, tao_contract.OUTPUT_SPECS, metadata)
        onnx.checker.check_model(proto, full_check=True)
    _check_graph(proto, path, graph.input_names, graph.output_names, metadata['num_aggregations'])
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata)})
    onnx.save(proto, str(Path(path)))
    return proto


def _declare_shapes(values, specs: dict, metadata: dict) -> None:
    """Write each value's shape from its spec: fixed sizes (``num_classes`` the
    model's) and the names of the dynamic axes."""
    for value in values:
        spec = specs[value.name]
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for size in spec.shape:
            dim = dims.add()
            if size == 'num_classes':
                dim.dim_value = metadata['num_classes']
            elif isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size


def _check_graph(
    proto: onnx.ModelProto,
    path: str | os.PathLike,
    input_names: Sequence[str],
    output_names: Sequence[str],
    num_aggregations: int,
) -> None:
    """The exported graph has these inputs and outputs and one ``nv::MSDA`` node per
    aggregation."""
    for kind, values, expected in (
        ('inputs', proto.graph.input, input_names),
        ('outputs', proto.graph.output, output_names),
    ):
        names = [value.name for value in values]
        if names != list(expected):
            raise RuntimeError(f'export: {path} has the {kind} {names}, expected {list(expected)}')
    msda = sum(
        1
        for node in proto.graph.node
        if node.domain == MSDA_DOMAIN and node.op_type == MSDA_OP_TYPE
    )
    if msda != num_aggregations:
        raise RuntimeError(
            f'export: {path} has {msda} {MSDA_DOMAIN}::{MSDA_OP_TYPE} nodes, '
            f'expected {num_aggregations} (one per aggregation)'
        )
