"""The tracker: a trained Sparse4D over a stream of multi-camera frames, on any back end."""

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from ..deploy.backends import (
    CudaGraphBackend,
    OnnxRuntimeBackend,
    PyTorchBackend,
    TensorRTBackend,
)
from ..deploy.graph_io import CACHED_ANCHOR, CACHED_FEATURE, cache_feeds, decoding_names
from ..deploy.graph_io import last_stage as last_stage_names
from ..deploy.metadata import graph_metadata, require_tracker_contract
from ..deploy.names import BACKENDS
from ..engine.checkpoint_settings import load_fitting_checkpoint
from ..models.layers.instance_bank import InstanceBank
from ..registry import MODELS, TASK_UTILS
from ..structures import ANCHOR_DIM, stack_multiview_inputs
from ..utils.input_error import InputError
from .frame_input import FIRST_TRANSFORM, check_frame, frame_cameras, frame_data
from .scene_origin import SceneOrigins


def load_model(cfg: Config, checkpoint: str | Path, device: str = 'cpu', owner: str = 'load_model'):
    """The config's ``Sparse4D`` with the checkpoint's weights, in eval mode on ``device``.
    The anchors come from the checkpoint (the k-means file is only needed to train); a
    checkpoint of another model is refused (``load_fitting_checkpoint``)."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f'{owner}: checkpoint {checkpoint} not found')
    cfg = copy.deepcopy(cfg)
    bank = cfg.model.head.instance_bank
    bank.anchor = np.zeros((bank.num_anchor, ANCHOR_DIM), np.float32)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
        model = MODELS.build(cfg.model)
    load_fitting_checkpoint(model, checkpoint, cfg, owner)
    return model.to(device).eval()


def build_backend(name: str, cfg: Config, checkpoint: str | Path, device: str = 'cpu', **options):
    """The back end ``name`` (one of ``BACKENDS``) of a checkpoint: ``.pth`` weights for
    ``pytorch`` and ``cudagraph``, the exported ``.onnx`` for ``onnxruntime``, the built
    ``.engine`` for ``tensorrt`` (``options``: ``plugin_library``). ``options`` go to the
    back end's class (e.g. ``precision`` of ``cudagraph``, ``providers`` of
    ``onnxruntime``)."""
    if name not in BACKENDS:
        raise ValueError(f'Sparse4DTracker: backend must be one of {BACKENDS}, got {name!r}')
    if name in ('onnxruntime', 'tensorrt'):
        runner = OnnxRuntimeBackend if name == 'onnxruntime' else TensorRTBackend
        backend = runner(checkpoint, **options)
        require_tracker_contract(backend.metadata, checkpoint)
        return backend
    model = load_model(cfg, checkpoint, device, 'Sparse4DTracker')
    backend = PyTorchBackend if name == 'pytorch' else CudaGraphBackend
    return backend(model, graph_metadata(model, cfg), device, **options)


def state_bank(metadata: dict, device: torch.device) -> InstanceBank:
    """An instance bank with a graph's settings (``graph_metadata``) that keeps the
    tracker's state only: the anchors and initial features are the graph's."""
    return InstanceBank(
        num_anchor=metadata['num_anchor'],
        embed_dims=metadata['embed_dims'],
        anchor=np.zeros((metadata['num_anchor'], ANCHOR_DIM), np.float32),
        num_temp_instances=metadata['num_temp_instances'],
        confidence_decay=metadata['confidence_decay'],
        default_time_interval=metadata['default_time_interval'],
        max_time_interval=metadata['max_time_interval'],
    ).to(device)


class Sparse4DTracker:
    """Runs a trained Sparse4D model over a stream of multi-camera frames, on a back end.

    Each call takes one frame of every camera and returns world-frame boxes with track ids.
    The tracker keeps the instance bank's state (``InstanceBank``, the same code as the
    model's): confidence decay and the top-T cache, anchor propagation over the real time
    interval, track ids, and a fresh start on a scene change, a time gap above
    ``max_time_interval`` or a timestamp that does not increase (``reset`` forces it). The
    back end runs the frame graph (``Sparse4DFrameGraph``: backbone, neck, decoders) with
    that cache as inputs, so every back end gives the tracks of ``tools/test.py`` up to its
    arithmetic. Images go through the config's test pipeline (after its loading step).

    Args:
        config: config path or Config (its ``custom_imports`` are honoured).
        checkpoint: what the back end runs (see ``build_backend``); None when ``backend``
            is a back-end object.
        device: 'cpu', 'cuda', 'cuda:1', ... (``pytorch`` and ``cudagraph``).
        backend: one of ``BACKENDS`` or a back-end object (``deploy.backends``).
        pipelined: ``track`` decodes each frame during the next call, while the device runs
            that next frame: results come one call late (``flush`` returns the last one).
            Both give the same results.
        **options: the back end's settings (``build_backend``).
    """

    def __init__(
        self,
        config,
        checkpoint: str | Path | None = None,
        device: str = 'cpu',
        backend='pytorch',
        pipelined: bool = False,
        **options,
    ):
        cfg = config if isinstance(config, Config) else Config.fromfile(str(config))
        steps = cfg.test_dataloader.dataset.pipeline
        if not steps or steps[0]['type'] != FIRST_TRANSFORM:
            raise ValueError(
                f'Sparse4DTracker: the test pipeline of {cfg.filename} must start with '
                f'{FIRST_TRANSFORM}, got {steps[0]["type"] if steps else None}'
            )
        if isinstance(backend, str):
            if checkpoint is None:
                raise ValueError(f'Sparse4DTracker: backend {backend!r} needs a checkpoint')
            backend = build_backend(backend, cfg, checkpoint, device, **options)
        elif checkpoint is not None or options:
            raise ValueError('Sparse4DTracker: a back-end object comes without checkpoint')
        meta = backend.metadata
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
            self.pipeline = Compose(steps[1:])
            preprocessor = MODELS.build(cfg.model.data_preprocessor)
            decoder = TASK_UTILS.build(
                dict(
                    cfg.model.head.decoder,
                    num_output=meta['num_output'],
                    score_threshold=meta['score_threshold'],
                )
            )
        self._setup(backend, decoder, preprocessor.mean, preprocessor.std, pipelined)

    @classmethod
    def from_model(
        cls, model: nn.Module, backend='cudagraph', pipelined: bool = False, **options
    ) -> 'Sparse4DTracker':
        """A tracker of a built, loaded ``Sparse4D`` on its device, for inputs that a
        reader hands over already at the model's input size (``track``; no data
        pipeline, so no ``__call__``). The model's own instance bank and decoder keep the
        state (``model.head.reset_temporal_state`` resets it too).

        Args:
            backend: ``'cudagraph'``, ``'pytorch'`` or such a back-end object of ``model``.
            **options: the back end's settings (``CudaGraphBackend``: precision, capture,
                channels_last, compile_frame, compile_mode).
        """
        runner = backend
        if isinstance(backend, str):
            if backend not in ('cudagraph', 'pytorch'):
                raise ValueError(
                    f"from_model: backend must be 'cudagraph' or 'pytorch', got {backend!r}"
                )
            device = next(model.parameters()).device
            kind = CudaGraphBackend if backend == 'cudagraph' else PyTorchBackend
            runner = kind(model, graph_metadata(model), device, **options)
        tracker = cls.__new__(cls)
        tracker.pipeline = None
        preprocessor, head = model.data_preprocessor, model.head
        tracker._setup(
            runner,
            head.decoder,
            preprocessor.mean,
            preprocessor.std,
            pipelined,
            head.instance_bank,
        )
        return tracker

    def _setup(
        self,
        backend,
        decoder,
        mean: Tensor,
        std: Tensor,
        pipelined: bool,
        bank: InstanceBank | None = None,
    ) -> None:
        meta = backend.metadata
        self.backend, self.metadata, self.decoder = backend, meta, decoder
        self.device = torch.device(backend.device)
        self.bank = bank if bank is not None else state_bank(meta, self.device)
        self.mean = mean.reshape(1, 1, 3, 1, 1).float().to(self.device)
        self.std = std.reshape(1, 1, 3, 1, 1).float().to(self.device)
        self.class_names = tuple(meta['class_names'] or ())
        self.max_num_cams = int(meta['max_num_cams'])
        self.last = last_stage_names(meta['num_decoder'])
        self.decode_names = decoding_names(meta['num_decoder'], meta['reid_keys'])
        # Graphs exported before the metadata carried the anchors' range are not checked.
        self.origins = SceneOrigins('Sparse4DTracker', meta.get('anchor_range'))
        self.pipelined = pipelined
        self.frame = 0
        self.last_decode_ms = 0.0  # the host's time for the latest decoded frame
        self._waiting = None  # pipelined: (tag, host inputs, event) not decoded yet

    @property
    def model(self) -> nn.Module | None:
        """The PyTorch model a ``pytorch`` or ``cudagraph`` back end runs (else None)."""
        graph = getattr(self.backend, 'graph', None)
        return graph.detector if graph is not None else None

    def reset(self) -> list[tuple[object, dict]]:
        """Forget every track (ids restart at ``FIRST_TRACK_ID``); returns the frame still
        waiting to be decoded (``pipelined``)."""
        done = self.flush()
        self.bank.reset()
        self.decoder.reset()
        return done

    def flush(self) -> list[tuple[object, dict]]:
        """The last frame of a ``pipelined`` tracker, decoded: [(tag, result)] or []."""
        if self._waiting is None:
            return []
        waiting, self._waiting = self._waiting, None
        return [self._decode_waiting(waiting)]

    @torch.no_grad()
    def __call__(
        self,
        images: Sequence[np.ndarray],
        intrinsics: np.ndarray,
        world_to_camera: np.ndarray,
        timestamp: float,
        scene: str = 'scene',
        origin: Sequence[float] | None = None,
        frame_idx: int | None = None,
        camera_names: Sequence[str] | None = None,
    ) -> dict:
        """
        Args:
            images: per camera RGB uint8 [H, W, 3] (sizes may differ).
            intrinsics: [N, 3, 3] K in pixels of those images; world_to_camera: [N, 4, 4].
            timestamp: seconds; scene: name of the scene (or camera group).
            origin: the world point [3] (metres) the model's frame is centred on; by
                default the one ``tools/create_data.py`` gives these cameras (the centre of
                their floor footprint, ``cameras_origin``), found at the scene's first frame
                and logged. A footprint mostly outside the anchors' range is warned about.

        Returns:
            dict of numpy arrays in ``SparseBox3DDecoder.decode``'s schema: ``bboxes_3d``
            [M, 10] (x, y, z, w, l, h, yaw, vx, vy, vz in world metres), ``scores_3d``,
            ``labels_3d``, ``cls_scores``, ``track_ids`` (from ``FIRST_TRACK_ID``),
            ``instance_feats`` and any extra outputs (e.g. ``reid_feats``); and
            ``class_names``.
        """
        if self.pipeline is None or self.pipelined:
            raise ValueError(
                'Sparse4DTracker: frames of images need a config (test pipeline) and '
                'pipelined=False; use track() for prepared inputs'
            )
        intrinsics, world_to_camera = check_frame(
            'Sparse4DTracker', images, intrinsics, world_to_camera, timestamp, self.max_num_cams
        )
        frame = self.frame if frame_idx is None else frame_idx
        origin = self.origins(scene, origin, frame_cameras(images, intrinsics, world_to_camera))
        data = frame_data(
            self.pipeline,
            images,
            intrinsics,
            world_to_camera,
            timestamp,
            scene,
            origin,
            frame,
            camera_names,
        )
        inputs = stack_multiview_inputs(data['inputs'])
        size = list(inputs['img'].shape[-2:])
        if self.metadata['image_size'] is not None and size != list(self.metadata['image_size']):
            raise InputError(
                f'Sparse4DTracker: the pipeline made {size} images, the graph was exported '
                f'for {self.metadata["image_size"]} (H, W)'
            )
        ((_, result),) = self.track(
            inputs['img'],
            inputs['projection_mat'],
            inputs['image_wh'],
            inputs['timestamp'],
            scene,
            origin=origin,
        )
        self.frame = frame + 1
        out = {key: value.detach().cpu().numpy() for key, value in result.items()}
        out['class_names'] = np.array([self.class_names[i] for i in out['labels_3d']])
        return out

    @torch.no_grad()
    def track(
        self,
        img: Tensor,
        projection_mat: Tensor,
        image_wh: Tensor,
        timestamp: float | Tensor,
        scene: str = 'scene',
        tag: object = None,
        mark: Callable[[str], None] | None = None,
        origin: Sequence[float] | None = None,
    ) -> list[tuple[object, dict]]:
        """Track one frame of prepared inputs: the state machine around the back end.

        Per frame: the instance bank's ``get`` (host-side checks of time and scene), the
        back end (the cache as inputs), the bank's ``cache`` and track ids on the back
        end's device (never waiting for it), then the decoding with the decoder's
        suppression and stitching.

        Args:
            img: [1, N, 3, H, W] uint8 at the model's input size (pinned host memory or
                the device).
            projection_mat: [1, N, 4, 4] model frame (metres) to pixels of ``img``.
            image_wh: [1, N, 2] (W, H) of ``img``.
            timestamp: seconds (float64 keeps sub-millisecond steps).
            scene: a new name (or a time gap) starts the tracks afresh.
            tag: returned with this frame's result (e.g. the frame index).
            mark: called with ``'graph_start'``, ``'graph_end'`` around the back end (timing).
            origin: [3] metres added back to the boxes (world coordinates); None keeps
                them in the model frame.

        Returns:
            [(tag, result)] of the frames decoded in this call, oldest first: this frame's,
            or with ``pipelined`` the previous frame's (none on the first call). ``result``
            is ``SparseBox3DDecoder.decode``'s (tensors).
        """
        state = self.bank.get(1, timestamp, [scene])
        if not self.backend.normalises:
            img = (img.to(self.device).float() - self.mean) / self.std
        feeds = {
            'img': img,
            'projection_mat': projection_mat.float(),
            'image_wh': image_wh.float(),
            **cache_feeds(state, self.bank.num_temp_instances, self.bank.embed_dims),
        }
        if mark is not None:
            mark('graph_start')
        outputs = self.backend(feeds)
        if mark is not None:
            mark('graph_end')
        cls = outputs[self.last['classification']]
        self.bank.cache(outputs[CACHED_FEATURE], outputs[CACHED_ANCHOR], cls)
        ids = self.bank.get_instance_id(cls, self.decoder.score_threshold)
        waiting = {
            **{name: outputs[name] for name in self.decode_names},
            'ids': ids,
            'valid': state['temp_valid'],
            'first_new_id': self.bank.first_new_id,
        }
        if origin is not None:
            waiting['origin'] = torch.as_tensor(origin, dtype=torch.float32).reshape(1, 3)
        if not self.pipelined:
            return [self._decode(tag, waiting)]
        # Copies, never views: the next frame overwrites a captured graph's outputs. On a
        # GPU they land in pinned memory behind this frame's work; the event says when.
        host = {
            name: torch.as_tensor(value).to('cpu', non_blocking=True, copy=True)
            for name, value in waiting.items()
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
        return self._decode(tag, host)

    def _decode(self, tag: object, inputs: dict) -> tuple[object, dict]:
        began = time.perf_counter()
        reid_keys = self.metadata['reid_keys']
        result = self.decoder.decode(
            inputs[self.last['classification']],
            inputs[self.last['prediction']],
            inputs[self.last['quality']],
            inputs['ids'],
            inputs[CACHED_FEATURE],
            {key: inputs[key] for key in reid_keys},
            restart=~inputs['valid'],
            first_new_id=inputs['first_new_id'],
            origin=inputs.get('origin'),
        )[0]
        self.last_decode_ms = (time.perf_counter() - began) * 1000.0
        return tag, result
