"""Deployment: the exported frame graph, its back ends and the host-side tracker."""

from .backends import (
    BACKENDS,
    CudaGraphBackend,
    OnnxRuntimeBackend,
    PyTorchBackend,
    TensorRTBackend,
)
from .cuda_graph import CudaGraphFrame, NormalisingFrameGraph
from .deploy_tracker import (
    DeployTracker,
    advance_bank,
    cache_feeds,
    decode_frame,
    decoding_inputs,
    finish_frame,
)
from .export import example_inputs, export_tracking_graph
from .frame_graph import INPUT_NAMES, Sparse4DFrameGraph
from .graph_tracker import GraphTracker
from .metadata import graph_metadata, read_onnx_metadata

__all__ = [
    'BACKENDS',
    'CudaGraphBackend',
    'CudaGraphFrame',
    'NormalisingFrameGraph',
    'advance_bank',
    'cache_feeds',
    'decode_frame',
    'decoding_inputs',
    'finish_frame',
    'DeployTracker',
    'GraphTracker',
    'OnnxRuntimeBackend',
    'PyTorchBackend',
    'TensorRTBackend',
    'INPUT_NAMES',
    'Sparse4DFrameGraph',
    'example_inputs',
    'export_tracking_graph',
    'graph_metadata',
    'read_onnx_metadata',
]
