"""Back ends that run the exported frame graph: one interface, four runtimes.

A back end maps the graph's inputs (numpy, by the names of ``INPUT_NAMES``; ONNX Runtime
and TensorRT take those their file declares) to its outputs (numpy, by name) and carries
the graph's ``metadata`` (``metadata.py``). ``DeployTracker`` drives any of them the same
way.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch
from mmengine.logging import MMLogger

from .cuda_graph import CudaGraphFrame
from .frame_graph import INPUT_NAMES, Sparse4DFrameGraph
from .metadata import read_onnx_metadata

BACKENDS = ('pytorch', 'cudagraph', 'onnxruntime', 'tensorrt')


def _named_numpy(names, outputs) -> dict[str, np.ndarray]:
    """A graph's outputs as float32 numpy arrays by name, each a copy on the host."""
    return {
        n: v.to('cpu', torch.float32, copy=True).numpy()
        for n, v in zip(names, outputs, strict=True)
    }


class PyTorchBackend:
    """The frame graph in PyTorch (the reference the others are compared with)."""

    name = 'pytorch'

    def __init__(self, detector: torch.nn.Module, metadata: dict, device: str = 'cpu'):
        self.graph = Sparse4DFrameGraph(detector).to(device).eval()
        self.metadata = dict(metadata, output_names=list(self.graph.output_names))
        self.device = device

    @torch.no_grad()
    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [
            torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device) for n in INPUT_NAMES
        ]
        return _named_numpy(self.metadata['output_names'], self.graph(*args))


class CudaGraphBackend:
    """The PyTorch frame graph captured as a CUDA graph (``CudaGraphFrame``): one launch per
    frame, optionally under fp16/bf16 autocast. Same outputs as ``PyTorchBackend`` up to
    the precision's rounding.

    Args:
        detector: a built, loaded ``Sparse4D`` (batch norms may be folded beforehand).
        device: a CUDA device.
        precision: ``'fp32'``, ``'fp16'`` or ``'bf16'``.
        capture: False runs the same steps without a graph (``CudaGraphFrame``).
    """

    name = 'cudagraph'

    def __init__(
        self,
        detector: torch.nn.Module,
        metadata: dict,
        device: str = 'cuda',
        precision: str = 'fp32',
        capture: bool = True,
    ):
        # Only the last decoder's outputs: all the host-side tracker reads.
        self.graph = Sparse4DFrameGraph(detector, all_stages=False).to(device).eval()
        self.frame = CudaGraphFrame(self.graph, device, precision, capture=capture)
        self.metadata = dict(metadata, output_names=list(self.graph.output_names))

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in INPUT_NAMES]
        # Copied out (always, also on a CPU): the next frame overwrites the graph's outputs.
        return _named_numpy(self.metadata['output_names'], self.frame(*args))


class OnnxRuntimeBackend:
    """An exported ONNX file in ONNX Runtime with the ``nv::MSDA`` custom-op library.

    Args:
        providers: execution providers in order of preference; default: CUDA where this
            onnxruntime has it, else CPU (the choice is logged).
    """

    name = 'onnxruntime'

    def __init__(self, onnx_path: str | os.PathLike, providers: list[str] | None = None):
        import onnxruntime

        from ..ops.deformable_aggregation_onnx import onnxruntime_session

        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise FileNotFoundError(f'OnnxRuntimeBackend: {onnx_path} not found')
        self.metadata = read_onnx_metadata(onnx_path)
        available = onnxruntime.get_available_providers()
        if providers is None:
            providers = [
                p for p in ('CUDAExecutionProvider', 'CPUExecutionProvider') if p in available
            ]
        missing = [p for p in providers if p not in available]
        if missing:
            raise ValueError(
                f'OnnxRuntimeBackend: providers {missing} are not in this '
                f'onnxruntime (available: {available})'
            )
        self.session = onnxruntime_session(onnx_path, providers)
        MMLogger.get_current_instance().info(
            f'OnnxRuntimeBackend: {onnx_path} on {self.session.get_providers()}'
        )
        # The graph's own inputs: a model whose velocity is in m/s has no interval inputs.
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, outputs, strict=True))


class TensorRTBackend:
    """A TensorRT engine built from the exported ONNX file with the ``nv::MSDA`` plugin
    (``tools/deploy/build_tensorrt_engine.py``); the metadata comes from the JSON the
    builder writes next to the engine. Needs the ``tensorrt`` Python package and a GPU.
    """

    name = 'tensorrt'

    def __init__(self, engine_path: str | os.PathLike, plugin_library: str | os.PathLike):
        try:
            import tensorrt as trt
        except ImportError as error:
            raise ImportError(
                'TensorRTBackend: the tensorrt Python package is not installed '
                '(pip install tensorrt, on a machine with an NVIDIA GPU)'
            ) from error
        engine_path, plugin_library = Path(engine_path), Path(plugin_library)
        for path, what in ((engine_path, 'engine'), (plugin_library, 'nv::MSDA plugin library')):
            if not path.is_file():
                raise FileNotFoundError(f'TensorRTBackend: {what} {path} not found')
        sidecar = engine_path.with_suffix('.json')
        if not sidecar.is_file():
            raise FileNotFoundError(
                f'TensorRTBackend: {sidecar} (the metadata written by '
                'build_tensorrt_engine.py) not found'
            )
        self.metadata = json.loads(sidecar.read_text())
        import ctypes

        ctypes.CDLL(str(plugin_library))
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, '')
        runtime = trt.Runtime(logger)
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f'TensorRTBackend: could not deserialise {engine_path}')
        self.context = self.engine.create_execution_context()
        self.trt = trt
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = trt.TensorIOMode.INPUT
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == is_input]

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        trt = self.trt
        buffers = {}
        for name in self.input_names:
            value = torch.from_numpy(np.ascontiguousarray(feeds[name])).cuda()
            buffers[name] = value
            self.context.set_input_shape(name, tuple(value.shape))
            self.context.set_tensor_address(name, value.data_ptr())
        outputs = {}
        for name in self.metadata['output_names']:
            shape = tuple(self.context.get_tensor_shape(name))
            numpy_dtype = trt.nptype(self.engine.get_tensor_dtype(name))
            dtype = torch.from_numpy(np.zeros(0, numpy_dtype)).dtype
            outputs[name] = torch.empty(shape, dtype=dtype, device='cuda')
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError('TensorRTBackend: execution failed')
        stream.synchronize()
        return {name: value.float().cpu().numpy() for name, value in outputs.items()}
