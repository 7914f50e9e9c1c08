"""The host side of deployment: the instance bank's state and the decoding around any back
end, so that PyTorch, ONNX Runtime and TensorRT give the same tracks."""

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from torch import Tensor

from ..apis.scene_origin import SceneOrigins
from ..apis.tracker import FIRST_TRANSFORM, check_frame, frame_cameras, frame_data
from ..models.layers.instance_bank import InstanceBank
from ..registry import MODELS, TASK_UTILS
from ..structures.track_ids import track_ids_from_instances


def cache_feeds(state: dict, num_temp_instances: int, embed_dims: int) -> dict[str, Tensor]:
    """The frame graph's cache inputs from ``InstanceBank.get``'s state, on the state's
    device: ``input_cached_feature`` [B, T, C] and ``input_cached_anchor`` [B, T, 11]
    (float32, zeros without a cache), ``prev_exists`` [B] float, ``interval_mask`` [B, 1, 1]
    bool and ``time_interval`` [B] float32 seconds."""
    valid = state['temp_valid']
    batch, device = len(valid), valid.device
    feature, anchor = state['cached_feature'], state['cached_anchor']
    return {
        'input_cached_feature': (
            feature.float()
            if feature is not None
            else torch.zeros(batch, num_temp_instances, embed_dims, device=device)
        ),
        'input_cached_anchor': (
            anchor.float()
            if anchor is not None
            else torch.zeros(batch, num_temp_instances, 11, device=device)
        ),
        'prev_exists': valid.float(),
        'interval_mask': valid.reshape(batch, 1, 1),
        'time_interval': state['time_interval'].float(),
    }


def advance_bank(
    bank: InstanceBank, decoder, outputs: dict[str, Tensor], num_decoder: int
) -> Tensor:
    """After the frame graph, on the outputs' device: the bank keeps the top-T cache and
    gives this frame's track ids [B, A] (long). Never waits for the device, so a pipelined
    loop can queue the next frame before decoding this one."""
    cls = outputs[f'classification{num_decoder}']
    bank.cache(outputs['output_cached_feature'], outputs['output_cached_anchor'], cls)
    return bank.get_instance_id(cls, decoder.score_threshold)


def decoding_inputs(num_decoder: int, reid_keys: Sequence[str]) -> tuple[str, ...]:
    """The graph outputs ``decode_frame`` reads."""
    return (
        f'classification{num_decoder}',
        f'prediction{num_decoder}',
        f'quality{num_decoder}',
        'output_cached_feature',
        *reid_keys,
    )


def decode_frame(
    decoder,
    outputs: dict[str, Tensor],
    ids: Tensor,
    valid: Tensor,
    first_new_id: Tensor | int,
    num_decoder: int,
    reid_keys: Sequence[str],
) -> dict[str, Tensor]:
    """The decoder (with its suppression and stitching) -> the first sample's result.

    Args:
        outputs: at least ``decoding_inputs``' graph outputs by name.
        ids: [B, A] from ``advance_bank``; valid: [B] bool, the frame's ``temp_valid``;
        first_new_id: the bank's ``first_new_id`` after ``advance_bank``.
    """
    return decoder.decode(
        outputs[f'classification{num_decoder}'],
        outputs[f'prediction{num_decoder}'],
        outputs[f'quality{num_decoder}'],
        ids,
        outputs['output_cached_feature'],
        {key: outputs[key] for key in reid_keys},
        restart=~valid,
        first_new_id=first_new_id,
    )[0]


def finish_frame(
    bank: InstanceBank,
    decoder,
    outputs: dict[str, Tensor],
    valid: Tensor,
    num_decoder: int,
    reid_keys: Sequence[str],
) -> dict[str, Tensor]:
    """``advance_bank`` then ``decode_frame``: the first sample's result.

    Args:
        outputs: the graph's outputs by name (``Sparse4DFrameGraph.output_names``).
        valid: [B] bool, the ``temp_valid`` of this frame's ``InstanceBank.get``.
    """
    ids = advance_bank(bank, decoder, outputs, num_decoder)
    return decode_frame(decoder, outputs, ids, valid, bank.first_new_id, num_decoder, reid_keys)


class DeployTracker:
    """Tracks one multi-camera frame at a time through a deployment back end.

    The host keeps what NVIDIA's export leaves outside the graph: confidence decay and the
    top-T cache, anchor propagation by velocity over the real time interval, track ids, the
    reset on a scene change, a timestamp that does not increase or a gap above
    ``max_time_interval``, and decoding to world coordinates. It runs the same
    ``InstanceBank`` code as the PyTorch model, so the tracks equal ``Sparse4DTracker``'s
    up to the back end's arithmetic.

    Args:
        config: the model's config (its test pipeline and data preprocessor prepare the
            images; its decoder settings decode).
        backend: a ``PyTorchBackend``, ``OnnxRuntimeBackend`` or ``TensorRTBackend``.
    """

    def __init__(self, config, backend):
        cfg = config if isinstance(config, Config) else Config.fromfile(str(config))
        steps = cfg.test_dataloader.dataset.pipeline
        if not steps or steps[0]['type'] != FIRST_TRANSFORM:
            raise ValueError(
                f'DeployTracker: the test pipeline of {cfg.filename} must start '
                f'with {FIRST_TRANSFORM}'
            )
        self.backend = backend
        meta = backend.metadata
        self.metadata = meta
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
            self.pipeline = Compose(steps[1:])
            self.preprocessor = MODELS.build(cfg.model.data_preprocessor)
            self.decoder = TASK_UTILS.build(
                dict(
                    cfg.model.head.decoder,
                    num_output=meta['num_output'],
                    score_threshold=meta['score_threshold'],
                )
            )
        self.bank = InstanceBank(
            num_anchor=meta['num_anchor'],
            embed_dims=meta['embed_dims'],
            anchor=np.zeros((meta['num_anchor'], 11), np.float32),  # unused on the host
            num_temp_instances=meta['num_temp_instances'],
            confidence_decay=meta['confidence_decay'],
            default_time_interval=meta['default_time_interval'],
            max_time_interval=meta['max_time_interval'],
        )
        self.class_names = tuple(meta['class_names'])
        self.max_num_cams = int(meta['max_num_cams'])
        # Graphs exported before the metadata carried the anchors' range are not checked.
        self.origins = SceneOrigins('DeployTracker', meta.get('anchor_range'))
        self.frame = 0

    def reset(self) -> None:
        """Forget every track (ids restart at ``FIRST_TRACK_ID``)."""
        self.bank.reset()
        self.decoder.reset()

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
        """Same arguments and result as ``Sparse4DTracker.__call__``."""
        meta = self.metadata
        intrinsics, world_to_camera = check_frame(
            'DeployTracker', images, intrinsics, world_to_camera, timestamp, self.max_num_cams
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
        inputs = self.preprocessor(data, training=False)['inputs']
        img = inputs['img'].float()
        if list(img.shape[-2:]) != list(meta['image_size']):
            raise ValueError(
                f'DeployTracker: the pipeline made {list(img.shape[-2:])} images, '
                f'the graph was exported for {meta["image_size"]} (H, W)'
            )
        state = self.bank.get(1, inputs['timestamp'], [scene])
        feeds = {
            'img': img.numpy(),
            'projection_mat': inputs['projection_mat'].float().numpy(),
            'image_wh': inputs['image_wh'].float().numpy(),
            **{
                name: value.numpy()
                for name, value in cache_feeds(
                    state, meta['num_temp_instances'], meta['embed_dims']
                ).items()
            },
        }
        out = {name: torch.from_numpy(value) for name, value in self.backend(feeds).items()}
        result = finish_frame(
            self.bank,
            self.decoder,
            out,
            state['temp_valid'],
            meta['num_decoder'],
            meta['reid_keys'],
        )
        self.frame = frame + 1
        result = {key: value.numpy() for key, value in result.items()}
        boxes = result.pop('boxes_3d').copy()
        boxes[:, :3] += np.asarray(origin, dtype=np.float32).reshape(3)
        result['boxes_3d'] = boxes
        result['track_ids'] = track_ids_from_instances(result.pop('instance_ids'))
        result['class_names'] = np.array([self.class_names[i] for i in result['labels_3d']])
        return result
