"""The tracking frame's network replayed from a captured CUDA graph: one launch per frame.

Eager PyTorch issues each of the frame's thousands of small kernels from Python; at the
sizes of a tracking frame the GPU then waits on the host. ``CudaGraphFrame`` records the
network once per input shape (``torch.cuda.graph``) and replays it: inputs are copied into
static buffers, the whole frame runs as one graph launch, the outputs land in static
buffers. The captured function must not synchronise with the host nor copy from it:
``Sparse4DFrameGraph`` qualifies (the instance bank's state comes in as tensors, and the
aggregation op has a fake kernel, so nothing reads shapes from the device).
"""

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from mmengine.logging import MMLogger
from torch import Tensor, nn

from .names import COMPILE_MODES, PRECISION_NAMES

PRECISIONS = dict(zip(PRECISION_NAMES, (None, torch.float16, torch.bfloat16), strict=True))


def compile_forward(module: nn.Module, backend: str, mode: str = 'default') -> None:
    """Replaces ``module.forward`` by its ``torch.compile`` (static shapes; ``mode`` one of
    ``COMPILE_MODES``: modes with CUDA graphs of their own would nest inside a captured
    frame). The method is compiled, not the module: hooks stay outside the compiled code and
    the module tree and its names are unchanged."""
    if mode not in COMPILE_MODES:
        raise ValueError(f'compile_mode must be one of {COMPILE_MODES}, got {mode!r}')
    module.forward = torch.compile(
        module.forward, backend=backend, dynamic=False, mode=None if mode == 'default' else mode
    )


def cameras_channels_last(img: Tensor) -> Tensor:
    """Images [B, N, 3, H, W] laid out channels-last per camera (the layout a channels-last
    backbone reads without converting)."""
    return (
        img.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, img.shape[:2])
    )


class NormalisingFrameGraph(nn.Module):
    """A frame graph that takes the cameras' uint8 images [B, N, 3, H, W] and normalises them
    on the device as ``Sparse4DDataPreprocessor`` does ((x - mean) / std), so a quarter of
    float32's bytes crosses the bus; optionally in channels-last memory for the backbone.

    Args:
        frame_graph: a ``Sparse4DFrameGraph`` (its first input is the normalised image).
        mean, std: per channel, in the images' channel order.
        channels_last: hand the backbone channels-last images (its weights should be too).
    """

    def __init__(
        self,
        frame_graph: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        channels_last: bool = False,
    ):
        super().__init__()
        self.frame_graph = frame_graph
        self.register_buffer(
            'mean', torch.tensor(mean, dtype=torch.float32).reshape(1, 1, 3, 1, 1), False
        )
        self.register_buffer(
            'std', torch.tensor(std, dtype=torch.float32).reshape(1, 1, 3, 1, 1), False
        )
        self.channels_last = channels_last

    def forward(self, img: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        if img.device != self.mean.device:
            raise ValueError(
                f'NormalisingFrameGraph: images on {img.device}, the module on '
                f'{self.mean.device}; move it with .to(device)'
            )
        img = (img.float() - self.mean) / self.std
        if self.channels_last:
            img = cameras_channels_last(img)
        return self.frame_graph(img, *rest)


@dataclass
class _Captured:
    graph: 'torch.cuda.CUDAGraph | None'
    inputs: list[Tensor]
    outputs: tuple[Tensor, ...]


class CudaGraphFrame:
    """Calls ``function`` through a CUDA graph captured for each distinct set of input
    shapes and dtypes (a tracker with a fixed camera set captures once).

    The returned tensors are static buffers: the next call overwrites them, so copy what
    must outlive it. Inputs may be on the host or on the device; they are copied into the
    graph's input buffers on the device's current stream. From pinned host memory that copy
    is asynchronous: do not overwrite a pinned input before the outputs have been read back
    (which waits for the copy). At most ``max_graphs`` signatures are kept; recording one
    more releases the oldest (logged).

    Args:
        function: tensors -> tuple of tensors, free of host synchronisation and of copies
            from the host (e.g. ``Sparse4DFrameGraph``).
        device: the CUDA device to run on.
        precision: ``'fp32'``, or ``'fp16'`` / ``'bf16'`` autocast recorded into the graph.
        warmup: eager calls on a side stream before each capture, at least 1 (cuDNN and
            cuBLAS choose their algorithms; tensors made once and cached, such as the
            feature maps' level index, are made outside the graph).
        max_graphs: how many input signatures keep their graph (each holds a frame's
            activations in its own memory pool).
        capture: False runs ``function`` eagerly on the same static buffers instead of a
            graph, on any device, and writes into the same output tensors as a graph would:
            the plumbing without the capture, for tests and for debugging a capture
            failure. The choice is logged.

    Raises:
        ValueError: an unknown precision, ``warmup`` < 1, ``max_graphs`` < 1, or ``capture``
            on a device that is not CUDA.
    """

    def __init__(
        self,
        function: Callable[..., Sequence[Tensor]],
        device: str | torch.device,
        precision: str = 'fp32',
        warmup: int = 3,
        capture: bool = True,
        max_graphs: int = 4,
    ):
        if precision not in PRECISIONS:
            raise ValueError(
                f'CudaGraphFrame: precision must be one of {sorted(PRECISIONS)}, got {precision!r}'
            )
        if warmup < 1 or max_graphs < 1:
            raise ValueError(
                f'CudaGraphFrame: warmup and max_graphs must be >= 1, got {warmup} and {max_graphs}'
            )
        self.device = torch.device(device)
        if self.device.type == 'cuda' and self.device.index is None:
            self.device = torch.device('cuda', torch.cuda.current_device())
        if capture and self.device.type != 'cuda':
            raise ValueError(
                f'CudaGraphFrame: CUDA graphs need a CUDA device, got {device!r} '
                '(capture=False runs the same steps without a graph)'
            )
        self.function = function
        self.precision = precision
        self.warmup = warmup
        self.capture = capture
        self.max_graphs = max_graphs
        self._captured: dict[tuple, _Captured] = {}
        if not capture:
            MMLogger.get_current_instance().info(
                'CudaGraphFrame: capture=False, running eagerly on static buffers'
            )

    @property
    def num_graphs(self) -> int:
        """How many input signatures have been captured."""
        return len(self._captured)

    def _autocast(self):
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return nullcontext()
        # A cached cast of a weight would be made during capture and freed after it.
        return torch.autocast(self.device.type, dtype=dtype, cache_enabled=False)

    def _run(self, inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
        with torch.no_grad(), self._autocast():
            outputs = self.function(*inputs)
        if not isinstance(outputs, (tuple, list)) or not all(
            isinstance(t, Tensor) for t in outputs
        ):
            raise TypeError('CudaGraphFrame: the function must return a tuple of tensors')
        return tuple(outputs)

    def _on_device(self):
        return torch.cuda.device(self.device) if self.device.type == 'cuda' else nullcontext()

    def _record(self, inputs: Sequence[Tensor], key: tuple) -> _Captured:
        if len(self._captured) >= self.max_graphs:
            oldest = next(iter(self._captured))
            del self._captured[oldest]
            MMLogger.get_current_instance().info(
                f'CudaGraphFrame: more than {self.max_graphs} input signatures; released the '
                f'graph of {[shape for shape, _ in oldest]}'
            )
        static = [torch.empty(t.shape, dtype=t.dtype, device=self.device) for t in inputs]
        for buffer, value in zip(static, inputs, strict=True):
            buffer.copy_(value)
        if not self.capture:
            entry = _Captured(None, static, self._run(static))
        else:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self._run(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # A capture stream of this device (torch's default one is made once, on the
            # device that was current at the first capture of the process).
            with torch.cuda.graph(graph, stream=torch.cuda.Stream(self.device)):
                outputs = self._run(static)
            graph.replay()  # a capture records the kernels without running them
            entry = _Captured(graph, static, outputs)
        self._captured[key] = entry
        shapes = ', '.join(str(tuple(t.shape)) for t in inputs)
        MMLogger.get_current_instance().info(
            f'CudaGraphFrame: {"captured" if self.capture else "prepared"} {self.precision} '
            f'inputs {shapes}'
        )
        return entry

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        with self._on_device():
            entry = self._captured.get(key)
            if entry is None:
                # The recording computes the first call of a signature on its inputs.
                return self._record(inputs, key).outputs
            for buffer, value in zip(entry.inputs, inputs, strict=True):
                buffer.copy_(value, non_blocking=True)
            if entry.graph is None:
                for buffer, value in zip(entry.outputs, self._run(entry.inputs), strict=True):
                    buffer.copy_(value)
            else:
                entry.graph.replay()
            return entry.outputs
