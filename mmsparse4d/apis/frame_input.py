"""One frame's input to a tracker: the checks of images and calibration, and the test
pipeline that turns them into the model's inputs."""

import numpy as np

from ..structures import projection_matrix, recentre_on_origin
from ..utils.input_error import InputError
from .scene_origin import calibrations

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
    centred = recentre_on_origin(world_to_camera, origin)
    results = {
        'img': [np.ascontiguousarray(image) for image in images],
        'cam_names': list(camera_names or [f'cam{i}' for i in range(len(images))]),
        'projection': projection_matrix(intrinsics, centred),
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
