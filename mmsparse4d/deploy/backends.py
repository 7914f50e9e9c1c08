"""Back ends that run the tracking frame graph: one interface, four runtimes.

A back end maps the graph's inputs (tensors or arrays by the names of ``graph_io``; ONNX
Runtime and TensorRT take those their file declares) to its outputs (tensors on its
``device``, by name; valid until the next call) and carries the graph's ``metadata``
(``metadata.py``). ``normalises``: it takes the cameras' uint8 images and normalises them
itself (else the tracker hands it normalised float images). ``Sparse4DTracker`` drives any
of them the same way.
"""

import json
import os
from pathlib import Path

import numpy as np
import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

from .cuda_graph import CudaGraphFrame, NormalisingFrameGraph, compile_forward
from .frame_graph import Sparse4DFrameGraph
from .graph_io import INPUT_NAMES
from .metadata import read_onnx_metadata


def _tensor(value, device: torch.device | str | None = None) -> Tensor:
    """A feed as a tensor (arrays are wrapped without a copy), on ``device`` if given."""
    value = (
        torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
    )
    return value if device is None else value.to(device)


class PyTorchBackend:
    """The frame graph in PyTorch (the reference the others are compared with).

    Args:
        detector: a built, loaded ``Sparse4D``.
        metadata: ``graph_metadata`` of it.
        all_stages: every decoder's outputs (as the exported graph); False only the last
            one's (all tracking reads).
    """

    name = 'pytorch'
    normalises = False

    def __init__(self, detector: nn.Module, metadata: dict, device='cpu', all_stages=True):
        self.device = torch.device(device)
        self.graph = Sparse4DFrameGraph(detector, all_stages).to(self.device).eval()
        self.metadata = dict(metadata, output_names=list(self.graph.output_names))

    @torch.no_grad()
    def __call__(self, feeds: dict) -> dict[str, Tensor]:
        outputs = self.graph(*(_tensor(feeds[n], self.device) for n in INPUT_NAMES))
        return dict(zip(self.metadata['output_names'], outputs, strict=True))


class CudaGraphBackend:
    """The frame graph captured as a CUDA graph (``CudaGraphFrame`` around
    ``NormalisingFrameGraph``): one launch per frame from uint8 images, optionally under
    fp16/bf16 autocast. Same outputs as ``PyTorchBackend`` up to the precision's rounding.
    Its outputs are the graph's static buffers: the next call overwrites them.

    Args:
        detector: a built, loaded ``Sparse4D`` prepared for inference (eval; batch norms
            may be folded, the backbone compiled: ``frame_benchmark.prepare_model``).
        device: a CUDA device (any device with ``capture`` False).
        precision: ``'fp32'``, ``'fp16'`` or ``'bf16'``.
        capture: False runs the same steps without a graph (``CudaGraphFrame``).
        channels_last: the cameras' images go to the backbone channels-last.
        compile_frame: a ``torch.compile`` backend (e.g. ``'inductor'``) for the whole
            frame network, head included, recorded into the graph; ``compile_mode`` one of
            ``names.COMPILE_MODES``.
    """

    name = 'cudagraph'
    normalises = True

    def __init__(
        self,
        detector: nn.Module,
        metadata: dict,
        device: str | torch.device = 'cuda',
        precision: str = 'fp32',
        capture: bool = True,
        channels_last: bool = False,
        compile_frame: str | None = None,
        compile_mode: str = 'default',
    ):
        self.device = torch.device(device)
        # Only the last decoder's outputs: all the tracker reads.
        self.graph = graph = Sparse4DFrameGraph(detector, all_stages=False)
        preprocessor = detector.data_preprocessor
        network = NormalisingFrameGraph(
            graph,
            preprocessor.mean.flatten().tolist(),
            preprocessor.std.flatten().tolist(),
            channels_last,
        ).to(self.device)
        if compile_frame is not None:
            compile_forward(network, compile_frame, compile_mode)
        elif compile_mode != 'default':
            raise ValueError('CudaGraphBackend: compile_mode is for compile_frame')
        self.frame = CudaGraphFrame(network, self.device, precision, capture=capture)
        self.metadata = dict(metadata, output_names=list(graph.output_names))

    def __call__(self, feeds: dict) -> dict[str, Tensor]:
        outputs = self.frame(*(_tensor(feeds[n]) for n in INPUT_NAMES))
        return dict(zip(self.metadata['output_names'], outputs, strict=True))


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

    device = torch.device('cpu')
    normalises = False

    def __call__(self, feeds: dict) -> dict[str, Tensor]:
        arrays = {n: _tensor(feeds[n]).cpu().numpy() for n in self.input_names}
        outputs = self.session.run(self.output_names, arrays)
        return {n: torch.from_numpy(v) for n, v in zip(self.output_names, outputs, strict=True)}


class TensorRTBackend:
    """A TensorRT engine built from the exported ONNX file with the ``nv::MSDA`` plugin
    (``tools/deploy/build_tensorrt_engine.py``); the metadata comes from the JSON the
    builder writes next to the engine. Needs the ``tensorrt`` Python package and a GPU.
    """

    name = 'tensorrt'
    device = torch.device('cuda')
    normalises = False

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

    def __call__(self, feeds: dict) -> dict[str, Tensor]:
        trt = self.trt
        buffers = {}
        for name in self.input_names:
            value = _tensor(feeds[name], 'cuda').contiguous()
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
        return {name: value.float() for name, value in outputs.items()}
