"""Deployment: the frame graph, its table of inputs and outputs, its export (also with
NVIDIA TAO's contract) and the back ends that run it (``mmsparse4d.apis.Sparse4DTracker``
drives them).

Importing the package imports none of its modules (the model and torch take seconds):
each name below loads its module on first use, so that ``from mmsparse4d.deploy import
BACKENDS`` lets a tool check its arguments first (``names``).
"""

import importlib

# name -> the module that defines it
_WHERE = {
    'BACKENDS': 'names',
    'COMPILE_MODES': 'names',
    'CONTRACTS': 'names',
    'OUR_CONTRACT': 'names',
    'PRECISION_NAMES': 'names',
    'TAO_CONTRACT': 'names',
    'CudaGraphBackend': 'backends',
    'OnnxRuntimeBackend': 'backends',
    'PyTorchBackend': 'backends',
    'TensorRTBackend': 'backends',
    'CudaGraphFrame': 'cuda_graph',
    'NormalisingFrameGraph': 'cuda_graph',
    'PRECISIONS': 'cuda_graph',
    'compile_forward': 'cuda_graph',
    'example_inputs': 'export',
    'export_tracking_graph': 'export',
    'tao_example_inputs': 'export',
    'Sparse4DFrameGraph': 'frame_graph',
    'GraphTensor': 'graph_io',
    'INPUTS': 'graph_io',
    'INPUT_NAMES': 'graph_io',
    'cache_feeds': 'graph_io',
    'graph_metadata': 'metadata',
    'read_onnx_metadata': 'metadata',
    'TaoFrameGraph': 'tao_frame_graph',
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f'.{_WHERE[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted([*globals(), *_WHERE])
