"""Tracking on one GPU with each frame's network replayed as a CUDA graph."""

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .cuda_graph import CudaGraphFrame, NormalisingFrameGraph
from .deploy_tracker import advance_bank, cache_feeds, decode_frame, decoding_inputs
from .frame_graph import INPUT_NAMES, Sparse4DFrameGraph

COMPILE_MODES = ('default', 'max-autotune-no-cudagraphs')


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


class GraphTracker:
    """A loaded ``Sparse4D`` model tracking one multi-camera frame per call.

    Per frame: the instance bank's ``get`` (host-side checks of time and scene), one launch
    of the frame network as a CUDA graph (``CudaGraphFrame`` around ``NormalisingFrameGraph``:
    uint8 images normalised on the device, backbone, neck, head), the bank's ``cache`` and
    track ids on the device, then the decoding (with the decoder's suppression and
    stitching) on the host. The bank lives on the model's device and never waits for it.

    With ``pipeline`` the decoder's inputs are copied to pinned host memory after the
    launch and decoded during the next call, while the device runs that next frame: results
    come one call late (``flush`` returns the last one). Without it each call returns its
    own frame's result. Both give the same results.

    Inputs are what a reader on the GPU server hands over, already at the model's input
    size (the pipeline's resizing and the projection matrices of the resized images are the
    reader's): no per-frame data pipeline runs here.

    Args:
        model: a built, loaded ``Sparse4D`` on its device, prepared for inference (eval;
            batch norms may be folded, the backbone compiled: ``prepare_model``).
        precision: ``'fp32'``, ``'fp16'`` or ``'bf16'`` (autocast recorded into the graph).
        channels_last: the cameras' images go to the backbone channels-last.
        capture: False runs the same steps eagerly (any device).
        pipeline: decode each frame during the next call (see above).
        compile_frame: a ``torch.compile`` backend (e.g. ``'inductor'``) for the whole frame
            network, head included, recorded into the CUDA graph; ``compile_mode`` one of
            ``COMPILE_MODES``.
    """

    def __init__(
        self,
        model: nn.Module,
        precision: str = 'fp32',
        channels_last: bool = False,
        capture: bool = True,
        pipeline: bool = False,
        compile_frame: str | None = None,
        compile_mode: str = 'default',
    ):
        self.device = next(model.parameters()).device
        self.head = model.head
        self.bank, self.decoder = self.head.instance_bank, self.head.decoder
        self.frame_graph = Sparse4DFrameGraph(model, all_stages=False)  # what tracking reads
        preprocessor = model.data_preprocessor
        network = NormalisingFrameGraph(
            self.frame_graph,
            preprocessor.mean.flatten().tolist(),
            preprocessor.std.flatten().tolist(),
            channels_last,
        ).to(self.device)
        if compile_frame is not None:
            compile_forward(network, compile_frame, compile_mode)
        elif compile_mode != 'default':
            raise ValueError('GraphTracker: compile_mode is for compile_frame')
        self.runner = CudaGraphFrame(network, self.device, precision, capture=capture)
        self.pipeline = pipeline
        self.decode_names = decoding_inputs(self.head.num_decoder, self.frame_graph.reid_keys)
        self.last_decode_ms = 0.0  # the host's time for the latest decoded frame
        self._waiting = None  # pipeline: (tag, host inputs, event) not decoded yet

    def reset(self) -> list[tuple[object, dict]]:
        """Forget every track; returns the frame still waiting to be decoded (pipeline)."""
        done = self.flush()
        self.head.reset_temporal_state()
        return done

    def flush(self) -> list[tuple[object, dict]]:
        """The pipeline's last frame, decoded: [(tag, result)] or []."""
        if self._waiting is None:
            return []
        waiting, self._waiting = self._waiting, None
        return [self._decode_waiting(waiting)]

    @torch.no_grad()
    def __call__(
        self,
        img: Tensor,
        projection_mat: Tensor,
        image_wh: Tensor,
        timestamp: float | Tensor,
        scene: str = 'scene',
        tag: object = None,
        mark: Callable[[str], None] | None = None,
    ) -> list[tuple]:
        """Track one frame.

        Args:
            img: [1, N, 3, H, W] uint8 (pinned host memory or the device).
            projection_mat: [1, N, 4, 4] world (model frame) to pixels of ``img``.
            image_wh: [1, N, 2] (W, H) of ``img``.
            timestamp: seconds (float64 keeps sub-millisecond steps).
            scene: a new name (or a time gap) starts the tracks afresh.
            tag: returned with this frame's result (e.g. the frame index).
            mark: called with ``'graph_start'``, ``'graph_end'`` around the launch (timing).

        Returns:
            [(tag, result)] of the frames decoded in this call, oldest first: this frame's
            without the pipeline; the previous frame's (or none on the first call) with it.
            ``result`` is ``SparseBox3DDecoder.decode``'s for the first sample (model
            frame: ``boxes_3d`` [M, 10], ``scores_3d``, ``labels_3d``, ``instance_ids``...).
        """
        state = self.bank.get(1, timestamp, [scene])
        feeds = cache_feeds(state, self.bank.num_temp_instances, self.bank.embed_dims)
        if mark is not None:
            mark('graph_start')
        outputs = self.runner(img, projection_mat, image_wh, *(feeds[n] for n in INPUT_NAMES[3:]))
        if mark is not None:
            mark('graph_end')
        named = dict(zip(self.frame_graph.output_names, outputs, strict=True))
        ids = advance_bank(self.bank, self.decoder, named, self.head.num_decoder)
        inputs = {name: named[name] for name in self.decode_names}
        if not self.pipeline:
            return [(tag, self._decode(inputs, ids, state['temp_valid'], self.bank.first_new_id))]
        # Copies, never views: the next replay overwrites the graph's outputs. On a GPU they
        # land in pinned memory behind this frame's work; the event says when.
        host = {
            name: value.to('cpu', non_blocking=True, copy=True)
            for name, value in {
                **inputs,
                'ids': ids,
                'valid': state['temp_valid'],
                'first_new_id': self.bank.first_new_id,
            }.items()
        }
        landed = None
        if self.device.type == 'cuda':
            landed = torch.cuda.Event()
            landed.record()
        done = self.flush()
        self._waiting = (tag, host, landed)
        return done

    def _decode_waiting(self, waiting) -> tuple[object, dict]:
        tag, host, landed = waiting
        if landed is not None:
            landed.synchronize()
        ids, valid, first_new_id = host.pop('ids'), host.pop('valid'), host.pop('first_new_id')
        return tag, self._decode(host, ids, valid, first_new_id)

    def _decode(self, inputs: dict, ids: Tensor, valid: Tensor, first_new_id) -> dict:
        began = time.perf_counter()
        result = decode_frame(
            self.decoder,
            inputs,
            ids,
            valid,
            first_new_id,
            self.head.num_decoder,
            self.frame_graph.reid_keys,
        )
        self.last_decode_ms = (time.perf_counter() - began) * 1000.0
        return result
