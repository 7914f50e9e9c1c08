"""Export a trained Sparse4D's tracking frame (``Sparse4DFrameGraph``) to ONNX."""

import json
import os
from pathlib import Path

import numpy as np
import onnx
import torch
from mmengine.config import Config

from ..ops.deformable_aggregation_onnx import MSDA_DOMAIN, MSDA_OP_TYPE, export_onnx
from .frame_graph import INPUT_NAMES, Sparse4DFrameGraph
from .metadata import METADATA_KEY, graph_metadata

DYNAMIC_INPUTS = {
    'img': {0: 'batch', 1: 'num_cams'},
    'projection_mat': {0: 'batch', 1: 'num_cams'},
    'image_wh': {0: 'batch', 1: 'num_cams'},
    'input_cached_feature': {0: 'batch'},
    'input_cached_anchor': {0: 'batch'},
    'prev_exists': {0: 'batch'},
    'interval_mask': {0: 'batch'},
    'time_interval': {0: 'batch'},
}


def example_inputs(metadata: dict, batch: int = 1, num_cams: int = 2) -> dict[str, np.ndarray]:
    """Inputs of the right shapes and dtypes (random images, a plausible ring of cameras)."""
    height, width = metadata['image_size']
    temp, channels = metadata['num_temp_instances'], metadata['embed_dims']
    rng = np.random.default_rng(0)
    projection = np.tile(np.eye(4, dtype=np.float32), (batch, num_cams, 1, 1))
    projection[..., 0, 0] = projection[..., 1, 1] = width / 2
    projection[..., 0, 2], projection[..., 1, 2] = width / 2, height / 2
    projection[..., 2, 3] = 10.0
    return {
        'img': rng.standard_normal((batch, num_cams, 3, height, width)).astype(np.float32),
        'projection_mat': projection,
        'image_wh': np.tile(np.array([width, height], np.float32), (batch, num_cams, 1)),
        'input_cached_feature': np.zeros((batch, temp, channels), np.float32),
        'input_cached_anchor': np.zeros((batch, temp, 11), np.float32),
        'prev_exists': np.zeros(batch, np.float32),
        'interval_mask': np.zeros((batch, 1, 1), bool),
        'time_interval': np.full(batch, metadata['default_time_interval'], np.float32),
    }


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
            dynamic_axes={n: DYNAMIC_INPUTS[n] for n in graph.input_names},
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
