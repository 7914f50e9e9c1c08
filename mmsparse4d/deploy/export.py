"""Export a trained Sparse4D's tracking frame (``Sparse4DFrameGraph``) to ONNX."""

import json
import os
from pathlib import Path

import numpy as np
import onnx
import torch
from mmengine.config import Config

from ..ops.deformable_aggregation_onnx import MSDA_DOMAIN, MSDA_OP_TYPE, export_onnx
from .frame_graph import Sparse4DFrameGraph
from .graph_io import INPUT_NAMES, INPUTS, dynamic_axes, input_shapes
from .metadata import METADATA_KEY, graph_metadata


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


def export_tracking_graph(
    detector: torch.nn.Module, cfg: Config, path: str | os.PathLike, trace_cams: int = 2
) -> onnx.ModelProto:
    """Write ``path``: the frame graph at opset 17 with one ``nv::MSDA`` node per
    aggregation, batch and camera count dynamic, and the host's settings in the metadata
    (``metadata_props['mmsparse4d']``, JSON).

    Args:
        detector: the built ``Sparse4D`` with its weights loaded.
        cfg: its config (image size, decoder and bank settings).
        trace_cams: cameras of the example the graph is traced with (any count runs).
    """
    graph = Sparse4DFrameGraph(detector.float().cpu()).eval()
    metadata = graph_metadata(detector, cfg)
    if not 1 <= trace_cams <= metadata['max_num_cams']:
        raise ValueError(
            f'export: trace_cams must be in [1, {metadata["max_num_cams"]}], got {trace_cams}'
        )
    feeds = example_inputs(metadata, num_cams=trace_cams)
    args = tuple(torch.from_numpy(feeds[name]) for name in INPUT_NAMES)
    output_names = graph.output_names
    metadata['output_names'] = list(output_names)
    with torch.no_grad():
        # The tracer drops inputs the graph does not read (the interval pair of a model whose
        # velocity is in m/s); they come last, so the names stay in order.
        proto = export_onnx(
            graph,
            args,
            path,
            input_names=graph.input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes(graph.input_names),
            exporter='torchscript',
        )
    inputs = [value.name for value in proto.graph.input]
    if inputs != list(graph.input_names):
        raise RuntimeError(
            f'export: {path} has the inputs {inputs}, expected {list(graph.input_names)}'
        )
    msda = sum(
        1
        for node in proto.graph.node
        if node.domain == MSDA_DOMAIN and node.op_type == MSDA_OP_TYPE
    )
    expected = metadata['num_aggregations']
    if msda != expected:
        raise RuntimeError(
            f'export: {path} has {msda} {MSDA_DOMAIN}::{MSDA_OP_TYPE} nodes, '
            f'expected {expected} (one per aggregation)'
        )
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata)})
    onnx.save(proto, str(Path(path)))
    return proto
