"""A stateful multi-camera tracker: one frame (images + calibration) at a time."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

from ..engine.checkpoint_settings import load_fitting_checkpoint
from ..registry import MODELS
from ..structures.track_ids import track_ids_from_instances
from ..utils.input_error import InputError
from .scene_origin import SceneOrigins, anchor_range, calibrations

FIRST_TRANSFORM = 'LoadMultiViewImages'


def check_frame(owner: str, images, intrinsics, world_to_camera, timestamp, max_num_cams: int):
    """Validate one frame's inputs; returns intrinsics [N, 3, 3] and world_to_camera
    [N, 4, 4] as float64. Errors name ``owner`` and what is wrong."""
    count = len(images)
    if count == 0:
        raise InputError(f'{owner}: no images')
    if count > max_num_cams:
        raise InputError(f'{owner}: {count} cameras, the model takes at most {max_num_cams}')
    for index, image in enumerate(images):
        if not (
            isinstance(image, np.ndarray)
            and image.dtype == np.uint8
            and image.ndim == 3
            and image.shape[2] == 3
        ):
            raise InputError(
                f'{owner}: image {index} must be uint8 [H, W, 3] RGB, got '
                f'{getattr(image, "dtype", type(image))} {getattr(image, "shape", "")}'
            )
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    world_to_camera = np.asarray(world_to_camera, dtype=np.float64)
    if intrinsics.shape != (count, 3, 3) or world_to_camera.shape != (count, 4, 4):
        raise InputError(
            f'{owner}: {count} images need intrinsics [{count}, 3, 3] and world_to_camera '
            f'[{count}, 4, 4], got {intrinsics.shape} and {world_to_camera.shape}'
        )
    if not (np.isfinite(intrinsics).all() and np.isfinite(world_to_camera).all()):
        raise InputError(f'{owner}: non-finite calibration matrices')
    for index in range(count):
        check_camera(owner, index, intrinsics[index], world_to_camera[index])
    if not np.isfinite(timestamp):
        raise InputError(f'{owner}: timestamp {timestamp} is not finite')
    return intrinsics, world_to_camera


def check_camera(owner: str, index: int, intrinsic: np.ndarray, world_to_camera: np.ndarray):
    """Refuse a camera that cannot project: K [3, 3] must have positive focal lengths and
    last row (0, 0, 1); world_to_camera [4, 4] must hold a rotation (orthonormal, det +1,
    to 1e-3: calibrations are written with a few decimals) and last row (0, 0, 0, 1)."""
    where = f'{owner}: camera {index}'
    if intrinsic[0, 0] <= 0 or intrinsic[1, 1] <= 0 or not np.allclose(intrinsic[2], (0, 0, 1)):
        raise InputError(
            f'{where}: intrinsics {intrinsic.tolist()} are not a camera matrix K (positive '
            'focal lengths, last row 0 0 1)'
        )
    rotation = world_to_camera[:3, :3]
    if (
        not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3)
        or abs(np.linalg.det(rotation) - 1) > 1e-3
        or not np.allclose(world_to_camera[3], (0, 0, 0, 1))
    ):
        raise InputError(
            f'{where}: world_to_camera {world_to_camera.tolist()} is not a rigid transform '
            '[R | t; 0 0 0 1] with R a rotation'
        )


def frame_cameras(images, intrinsics: np.ndarray, world_to_camera: np.ndarray) -> list:
    """The cameras of one frame (``CameraCalibration``) from its images' sizes."""
    return calibrations(intrinsics, world_to_camera, [image.shape[1::-1] for image in images])


def frame_data(
    pipeline, images, intrinsics, world_to_camera, timestamp, scene, origin, frame, camera_names
) -> dict:
    """One frame through the test pipeline (after loading), batched for the data
    preprocessor: ``{'inputs': ..., 'data_samples': [...]}``."""
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    # Re-centre the cameras on the origin, as the converter does: X_cam = R (X + o) + t.
    centred = world_to_camera.copy()
    centred[:, :3, 3] += np.einsum('nij,j->ni', centred[:, :3, :3], origin)
    lift = np.tile(np.eye(4), (len(images), 1, 1))
    lift[:, :3, :3] = intrinsics
    results = {
        'img': [np.ascontiguousarray(image) for image in images],
        'cam_names': list(camera_names or [f'cam{i}' for i in range(len(images))]),
        'projection': lift @ centred,
        'intrinsic': intrinsics,
        'world_to_camera': centred,
        'image_wh': np.array([image.shape[1::-1] for image in images], dtype=np.float32),
        'img_aug_matrix': np.tile(np.eye(4), (len(images), 1, 1)),
        'timestamp': float(timestamp),
        'scene_name': scene,
        'frame_idx': frame,
        'token': f'{scene}__{frame:09d}',
        'origin': origin,
    }
    packed = pipeline(results)
    data = {
        'inputs': {k: [v] for k, v in packed['inputs'].items()},
        'data_samples': [packed['data_samples']],
    }
    return data


class Sparse4DTracker:
    """Runs a trained Sparse4D model over a stream of multi-camera frames.

    Each call takes one frame of every camera and returns world-frame boxes with track ids.
    The model's instance bank carries tracks between calls; it starts afresh by itself on a
    scene change, a time gap above ``max_time_interval`` or a timestamp that does not
    increase (``reset`` forces it). Images go through the config's test pipeline (after
    its loading step), so results equal ``tools/test.py`` on the same frames.

    Args:
        config: config path or Config (its ``custom_imports`` are honoured).
        checkpoint: weights (loaded with torch's weights-only default).
        device: 'cpu', 'cuda', 'cuda:1', ...
    """

    def __init__(self, config, checkpoint: str | Path, device: str = 'cpu'):
        cfg = config if isinstance(config, Config) else Config.fromfile(str(config))
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise FileNotFoundError(f'Sparse4DTracker: checkpoint {checkpoint} not found')
        steps = cfg.test_dataloader.dataset.pipeline
        if not steps or steps[0]['type'] != FIRST_TRANSFORM:
            raise ValueError(
                f'Sparse4DTracker: the test pipeline of {cfg.filename} must start with '
                f'{FIRST_TRANSFORM}, got {steps[0]["type"] if steps else None}'
            )
        bank = cfg.model.head.instance_bank
        # The anchors are in the checkpoint; the k-means file is only needed to train.
        bank.anchor = np.zeros((bank.num_anchor, 11), np.float32)
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
            self.model = MODELS.build(cfg.model)
            self.pipeline = Compose(steps[1:])
        load_fitting_checkpoint(self.model, checkpoint, cfg, 'Sparse4DTracker')
        self.model.to(device).eval()
        self.max_num_cams = self.model.head.max_num_cams
        self.class_names = tuple(cfg.get('class_names', cfg.metainfo['classes']))
        anchors = self.model.head.instance_bank.anchor.detach().cpu().numpy()
        self.origins = SceneOrigins('Sparse4DTracker', anchor_range(anchors))
        self.frame = 0

    def reset(self) -> None:
        """Forget every track (ids restart at ``FIRST_TRACK_ID``)."""
        self.model.head.reset_temporal_state()

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
            dict of numpy arrays: ``boxes_3d`` [M, 10] (x, y, z, w, l, h, yaw, vx, vy, vz in
            world metres), ``scores_3d``, ``labels_3d``, ``class_names``, ``track_ids``,
            ``cls_scores``, ``instance_feats`` and any extra outputs (e.g. ``reid_feats``).
            ``track_ids`` follow ``mmsparse4d.structures.track_ids`` (from 1).
        """
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
        data = self.model.data_preprocessor(data, training=False)
        sample = self.model(**data, mode='predict')[0]
        self.frame = frame + 1
        pred = sample.pred_instances_3d
        out = {key: value.detach().cpu().numpy() for key, value in pred.items()}
        out['boxes_3d'] = out.pop('bboxes_3d')
        out['track_ids'] = track_ids_from_instances(out.pop('instance_ids'))
        out['class_names'] = np.array([self.class_names[i] for i in out['labels_3d']])
        return out
