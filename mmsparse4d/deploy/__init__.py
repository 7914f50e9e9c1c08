"""Deployment: the frame graph, its table of inputs and outputs, its export (also with
NVIDIA TAO's contract) and the back ends that run it (``mmsparse4d.apis.Sparse4DTracker``
drives them)."""

from .backends import (
    BACKENDS,
    CudaGraphBackend,
    OnnxRuntimeBackend,
    PyTorchBackend,
    TensorRTBackend,
)
from .cuda_graph import COMPILE_MODES, CudaGraphFrame, NormalisingFrameGraph, compile_forward
from .export import CONTRACTS, example_inputs, export_tracking_graph, tao_example_inputs
from .frame_graph import Sparse4DFrameGraph
from .graph_io import INPUT_NAMES, INPUTS, GraphTensor, cache_feeds
from .metadata import graph_metadata, read_onnx_metadata
from .tao_frame_graph import TaoFrameGraph

__all__ = [
    'BACKENDS',
    'COMPILE_MODES',
    'CONTRACTS',
    'CudaGraphBackend',
    'CudaGraphFrame',
    'GraphTensor',
    'INPUTS',
    'INPUT_NAMES',
    'NormalisingFrameGraph',
    'OnnxRuntimeBackend',
    'PyTorchBackend',
    'Sparse4DFrameGraph',
    'TaoFrameGraph',
    'TensorRTBackend',
    'cache_feeds',
    'compile_forward',
    'example_inputs',
    'export_tracking_graph',
    'graph_metadata',
    'read_onnx_metadata',
    'tao_example_inputs',
]
