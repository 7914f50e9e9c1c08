"""Deployment: the exported frame graph, its back ends and the host-side tracker."""

from .backends import BACKENDS, OnnxRuntimeBackend, PyTorchBackend, TensorRTBackend
from .deploy_tracker import DeployTracker
from .export import example_inputs, export_tracking_graph
from .frame_graph import INPUT_NAMES, Sparse4DFrameGraph
from .metadata import graph_metadata, read_onnx_metadata

__all__ = [
    'BACKENDS',
    'DeployTracker',
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
