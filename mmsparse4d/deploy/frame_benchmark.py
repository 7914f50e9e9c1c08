"""Steady-state time per tracking frame of a whole model, with a per-stage breakdown.

A frame is what a deployed tracker does per multi-camera frame: the data preprocessor
(uint8 images from the host to the device, normalisation), backbone, neck, every decoder
operation, the instance bank (cache, ids) and post-processing (decoding, the decoder's
host-side suppression and stitching). Stages are timed with CUDA events on a GPU (no host
synchronisation inside the frame; all events are read after the last frame) and with
``time.perf_counter`` on a CPU. Inputs are random images from cameras on a ring
(``mmsparse4d.testing.random_batch``), fed in frame order so the instance bank carries its
cache as in tracking.
"""

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..apis.tracker import Sparse4DTracker
from ..testing import random_batch
from .backends import CudaGraphBackend
from .cuda_graph import PRECISIONS, cameras_channels_last, compile_forward
from .metadata import graph_metadata
from .names import COMPILE_MODES

OPERATION_STAGE = {
    'deformable': 'aggregation',
    'gnn': 'attention',
    'temp_gnn': 'temporal attention',
    'ffn': 'ffn',
    'norm': 'norm',
    'refine': 'refine',
}
DISTINCT_IMAGE_SETS = 4  # the graph mode's input images, cycled
OVERLAPPED = '(overlapped)'  # marks a stage that runs beside the others (not in their sum)


class _Clock:
    """Start/stop marks on the device's timeline; durations are read once at the end."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == 'cuda'

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def elapsed_ms(self, start, end) -> float:
        if self.cuda:
            return start.elapsed_time(end)
        return (end - start) * 1000.0

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


@dataclass
class FrameTimes:
    """Per frame: the whole frame and each stage, in milliseconds."""

    frame_ms: list[float] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    peak_memory_mib: float | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.frame_ms)

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.frame_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def stage_medians(self) -> dict[str, float]:
        return {name: statistics.median(values) for name, values in self.stage_ms.items()}


class StageTimer:
    """Marks around named modules (forward hooks) and callables, per frame."""

    def __init__(self, device: torch.device):
        self.clock = _Clock(device)
        self.marks: list[tuple[str, object, object]] = []
        self._open: dict[str, list] = defaultdict(list)
        self._handles = []

    def attach(self, module: nn.Module, name: str) -> None:
        def before(*_):
            self._open[name].append(self.clock.mark())

        def after(*_):
            self.marks.append((name, self._open[name].pop(), self.clock.mark()))

        self._handles.append(module.register_forward_pre_hook(before))
        self._handles.append(module.register_forward_hook(after))

    def wrap(self, function: Callable, name: str) -> Callable:
        def timed(*args, **kwargs):
            start = self.clock.mark()
            result = function(*args, **kwargs)
            self.marks.append((name, start, self.clock.mark()))
            return result

        return timed

    def take(self) -> list[tuple[str, object, object]]:
        marks, self.marks = self.marks, []
        return marks

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def stage_names(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, stage name) for the backbone, the neck, the anchor encoder and every
    decoder operation: ``decoder<i> <stage>`` where ``i`` counts refine stages (the first
    decoder is 0)."""
    named = [(model.img_backbone, 'backbone')]
    if getattr(model, 'img_neck', None) is not None:
        named.append((model.img_neck, 'neck'))
    head = model.head
    named.append((head.anchor_encoder, 'anchor encoding'))
    decoder = 0
    for op, layer in zip(head.operation_order, head.layers, strict=True):
        named.append((layer, f'decoder{decoder} {OPERATION_STAGE.get(op, op)}'))
        if op == 'refine':
            decoder += 1
    return named


def prepare_model(
    model: nn.Module,
    channels_last: bool = False,
    fold_bn: bool = False,
    compile_backend: str | None = None,
    compile_mode: str = 'default',
):
    """Inference settings: eval mode; optionally channels-last convolutions, the backbone's
    and neck's batch norms folded into their convolutions (mmcv's ``fuse_conv_bn``; outputs
    equal up to rounding) and the backbone and neck compiled with ``torch.compile``
    (``compile_backend``, e.g. ``'inductor'``; the head stays eager: its instance bank is
    host-side Python; ``compile_mode`` one of ``COMPILE_MODES``). Each camera count compiles
    once, in the warm-up frames."""
    if compile_mode not in COMPILE_MODES:
        raise ValueError(
            f'prepare_model: compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}'
        )
    model.eval()
    if fold_bn:
        from mmcv.cnn import fuse_conv_bn

        fuse_conv_bn(model.img_backbone)
        if getattr(model, 'img_neck', None) is not None:
            fuse_conv_bn(model.img_neck)
    if channels_last:
        model.img_backbone.to(memory_format=torch.channels_last)
        if getattr(model, 'img_neck', None) is not None:
            model.img_neck.to(memory_format=torch.channels_last)
    if compile_backend is not None:
        for module in (model.img_backbone, getattr(model, 'img_neck', None)):
            if module is not None:
                compile_forward(module, compile_backend, compile_mode)
    return model


def benchmark_frames(
    model: nn.Module,
    cams: int,
    image_size: Sequence[int],
    frames: int = 50,
    warmup: int = 10,
    precision: str = 'fp32',
    channels_last: bool = False,
) -> FrameTimes:
    """Track ``warmup + frames`` frames of ``cams`` random cameras at ``image_size`` (W, H);
    returns the times of the last ``frames``. The model must be prepared (``prepare_model``)."""
    _check_arguments(precision, frames, warmup, cams)
    device = next(model.parameters()).device
    dtype = PRECISIONS[precision]
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    width, height = image_size
    # Inputs are made before timing: the benchmark measures the model, not the generator.
    batches = [
        random_batch(1, cams, (width, height), boxes=1, seed=f, frame=f)
        for f in range(warmup + frames)
    ]
    model.head.reset_temporal_state()
    timer = StageTimer(device)
    for module, name in stage_names(model):
        timer.attach(module, name)
    # Methods timed by wrapping them on the instances for the run (restored below).
    wrapped = [(model.head, 'predict', 'post-processing')] + [
        (model.head.instance_bank, method, 'instance bank')
        for method in ('get', 'merge_cache', 'cache', 'get_instance_id')
    ]
    # What each instance held before (normally nothing: the class's method shows through).
    originals = [(owner, method, vars(owner).get(method)) for owner, method, _ in wrapped]
    for owner, method, name in wrapped:
        setattr(owner, method, timer.wrap(getattr(owner, method), name))
    result = FrameTimes()
    recorded = []
    # A compiled backbone recompiles for every camera count and precision (static shapes);
    # dynamo gives up after a few recompilations of one function and runs it eagerly from
    # then on, so each measurement starts from a clean cache and compiles in its warm-up.
    torch._dynamo.reset()
    try:
        with _measuring_on(device), torch.no_grad(), autocast:
            for index, batch in enumerate(batches):
                start = timer.clock.mark()
                data = model.data_preprocessor(batch, False)
                if channels_last:
                    data['inputs']['img'] = cameras_channels_last(data['inputs']['img'])
                preprocess_end = timer.clock.mark()
                model(**data, mode='predict')
                end = timer.clock.mark()
                marks = timer.take()
                if index >= warmup:
                    recorded.append((start, preprocess_end, end, marks))
        timer.clock.synchronize()
    finally:
        timer.detach()
        for owner, method, original in originals:
            if original is None:
                delattr(owner, method)  # the class's method shows through again
            else:
                setattr(owner, method, original)
    for start, preprocess_end, end, marks in recorded:
        result.frame_ms.append(timer.clock.elapsed_ms(start, end))
        per_stage = defaultdict(float)
        per_stage['preprocess'] = timer.clock.elapsed_ms(start, preprocess_end)
        for name, begin, finish in marks:
            per_stage[name] += timer.clock.elapsed_ms(begin, finish)
        for name, value in per_stage.items():
            result.stage_ms[name].append(value)
    result.peak_memory_mib = _peak_memory_mib(device)
    return result


def benchmark_graph_frames(
    model: nn.Module,
    cams: int,
    image_size: Sequence[int],
    frames: int = 50,
    warmup: int = 10,
    precision: str = 'fp32',
    channels_last: bool = False,
    capture: bool = True,
    overlap_copy: bool = False,
    pipeline: bool = False,
    compile_frame: str | None = None,
    compile_mode: str = 'default',
    on_result: Callable[[int, dict], None] | None = None,
) -> FrameTimes:
    """``benchmark_frames`` for ``Sparse4DTracker`` on its ``cudagraph`` back end: the
    network replayed from a CUDA graph (``CudaGraphFrame``) and the tracking around it (the
    instance bank's ``get``, ``cache`` and ids on the device, the decoder on the host). Per
    frame: the bank's ``get``, the uint8 images from pinned host memory into the graph's
    input buffer, one graph launch (image normalisation, backbone, neck, head), then the
    bank and the decoding. The graph's
    inside is one stage (``frame graph``); ``benchmark_frames`` breaks it down eagerly.
    ``capture`` False runs the same steps without a graph (any device; the test suite).
    ``overlap_copy`` (CUDA): the next frame's images go to the device on a copy stream while
    this frame runs, as a pipelined reader would hand them over; the frame then starts with
    a device-to-device copy into the graph's buffer.

    ``pipeline``: the host decodes frame t (suppression, stitching) while the device runs
    frame t + 1. After each graph launch only device work is queued (the bank's ``cache``
    and ids never wait for the device, ``Sparse4DTracker.track``), the decoder's inputs are
    copied to pinned host memory, and the previous frame is decoded once its copy has
    landed. Results come one frame late; the frame time is then the period between frame
    starts on the device's timeline (the throughput), and the host's decoding is reported
    as its own, overlapped stage. ``on_result(frame_index, result)`` receives every frame's
    decoded result (the same in both modes), in frame order.

    ``compile_frame`` (a ``torch.compile`` backend, e.g. ``'inductor'``): the whole frame
    network, head included, is compiled as one graph (no graph breaks; the head's many small
    element-wise kernels fuse) and recorded into the CUDA graph; ``compile_mode`` as in
    ``prepare_model``."""
    _check_arguments(precision, frames, warmup, cams)
    device = next(model.parameters()).device
    # Without compile_frame, compile_mode was the backbone's (prepare_model applied it).
    frame_mode = compile_mode if compile_frame is not None else 'default'
    settings = (precision, capture, channels_last, compile_frame, frame_mode)
    backend = CudaGraphBackend(model, graph_metadata(model), device, *settings)
    tracker = Sparse4DTracker.from_model(model, backend, pipelined=pipeline)
    pinned = device.type == 'cuda'
    width, height = image_size
    # A few distinct image sets, cycled (the time does not depend on the pixels; 60 cameras
    # of 960x544 are 94 MB of pinned memory per set); the timestamps advance every frame.
    distinct = []
    for f in range(min(DISTINCT_IMAGE_SETS, warmup + frames + 1)):
        inputs = random_batch(1, cams, (width, height), boxes=1, seed=f, frame=f)['inputs']
        img = inputs['img'][0][None]  # [1, N, 3, H, W] uint8, as a decoder hands it over
        distinct.append(
            (
                img.pin_memory() if pinned else img,
                inputs['projection_mat'][0][None].float().to(device),
                inputs['image_wh'][0][None].float().to(device),
            )
        )
    # The pipeline's period of the last timed frame ends at the next frame's start.
    total = warmup + frames + (1 if pipeline else 0)
    prepared = [
        (*distinct[f % len(distinct)], torch.tensor([f / 30], dtype=torch.float64))
        for f in range(total)
    ]
    tracker.reset()
    torch._dynamo.reset()  # a compiled backbone compiles afresh for this camera count
    clock = _Clock(device)
    overlap = overlap_copy and device.type == 'cuda'
    copy_stream = torch.cuda.Stream(device) if overlap else None

    def upload(host_img: Tensor) -> tuple[Tensor, object]:
        # On the copy stream; the event says when the images are on the device.
        with torch.cuda.stream(copy_stream):
            on_gpu = host_img.to(device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(copy_stream)
        return on_gpu, done

    decode_ms = {}  # frame index -> the host's decoding time

    def deliver(results) -> None:
        for index, result in results:  # at most one frame is decoded per call
            decode_ms[index] = tracker.last_decode_ms
            if on_result is not None:
                on_result(index, result)

    recorded = []
    with _measuring_on(device), torch.no_grad():
        pending = upload(prepared[0][0]) if overlap else None
        for index, (img, projection_mat, image_wh, timestamp) in enumerate(prepared):
            marks = {'start': clock.mark()}
            if overlap:
                img, done = pending
                torch.cuda.current_stream(device).wait_event(done)
                img.record_stream(torch.cuda.current_stream(device))
                if index + 1 < len(prepared):
                    pending = upload(prepared[index + 1][0])

            def stamp(name: str, marks: dict = marks) -> None:
                marks[name] = clock.mark()

            deliver(
                tracker.track(img, projection_mat, image_wh, timestamp, 'benchmark', index, stamp)
            )
            marks['end'] = clock.mark()
            recorded.append(marks)
        deliver(tracker.flush())
    clock.synchronize()
    result = FrameTimes()
    for index in range(warmup, warmup + frames):
        marks = recorded[index]
        if pipeline:
            result.frame_ms.append(clock.elapsed_ms(marks['start'], recorded[index + 1]['start']))
        else:
            result.frame_ms.append(clock.elapsed_ms(marks['start'], marks['end']))
        result.stage_ms['instance bank get'].append(
            clock.elapsed_ms(marks['start'], marks['graph_start'])
        )
        result.stage_ms['frame graph'].append(
            clock.elapsed_ms(marks['graph_start'], marks['graph_end'])
        )
        after = clock.elapsed_ms(marks['graph_end'], marks['end'])
        if pipeline:
            # On the device's timeline: the bank's kernels and the copy, and any wait for the
            # host when its decoding of the previous frame is the slower side.
            result.stage_ms['bank cache, ids, copy to host (+ waiting for the host)'].append(after)
            result.stage_ms[f'decoding on the host {OVERLAPPED}'].append(decode_ms[index])
        else:
            result.stage_ms['bank, ids, post-processing'].append(after)
    result.peak_memory_mib = _peak_memory_mib(device)
    return result


@contextmanager
def _measuring_on(device: torch.device):
    """Runs on ``device`` (current CUDA device) with its peak-memory counter reset."""
    if device.type != 'cuda':
        yield
        return
    with torch.cuda.device(device):
        torch.cuda.reset_peak_memory_stats(device)
        yield


def _peak_memory_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == 'cuda' else None


def _check_arguments(precision: str, frames: int, warmup: int, cams: int) -> None:
    if precision not in PRECISIONS:
        raise ValueError(
            f'benchmark: precision must be one of {sorted(PRECISIONS)}, got {precision}'
        )
    if frames < 1 or warmup < 0 or cams < 1:
        raise ValueError(
            f'benchmark: need frames >= 1, warmup >= 0, cams >= 1; got {frames}, {warmup}, {cams}'
        )


def max_cameras(
    times_by_cams: dict[int, FrameTimes], fps: float
) -> tuple[int | None, float | None]:
    """The largest measured camera count whose median frame time sustains ``fps``, and the
    count a least-squares line through the measurements (time = a + b * cams) predicts
    (None with fewer than two counts)."""
    budget_ms = 1000.0 / fps
    measured = [cams for cams, times in times_by_cams.items() if times.median_ms <= budget_ms]
    best = max(measured) if measured else None
    if len(times_by_cams) < 2:
        return best, None
    xs = list(times_by_cams)
    ys = [times_by_cams[x].median_ms for x in xs]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    if slope <= 0:
        return best, None
    intercept = mean_y - slope * mean_x
    return best, max(0.0, (budget_ms - intercept) / slope)
