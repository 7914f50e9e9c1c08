"""``calibration.json`` of an AI City 2025 / Isaac Sim scene: per-camera K and [R|t].

Conventions (formats.md §1.4): ``intrinsicMatrix`` is the 3x3 K in pixels,
``extrinsicMatrix`` the 3x4 world-to-camera [R|t] in the OpenCV camera frame (x right,
y down, z forward): ``X_cam = R @ X_world + t``; world metres with z up;
``cameraMatrix`` the 3x4 P = K [R|t]. Attribute values may be strings and are always cast.

A camera needs ``intrinsicMatrix`` and ``extrinsicMatrix``, or ``cameraMatrix`` alone
(then decomposed into K with positive focal lengths and K[2, 2] = 1, and [R|t] with
det R = +1). A ``cameraMatrix`` given with the other two must equal K [R|t] up to a
scale, within ``CAMERA_MATRIX_RTOL`` (relative, Frobenius norm): files round their
numbers, but a matrix of another camera or convention is far off.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mmengine.logging import print_log

from ...structures.camera_geometry import camera_centre, projection_matrix
from ...utils.input_error import InputError

# Relative Frobenius distance allowed between cameraMatrix and K [R|t] (after the best
# scale). Measured on generated 1920x1080 cameras: printing R to 5 decimals, t to 3 and
# P to 2 stays below 5e-5, a rotation off by 1 degree gives about 2e-3, a matrix of another
# convention or camera is off by order 1.
CAMERA_MATRIX_RTOL = 1e-3
# Absolute tolerance of the checks that R is a rotation and that K is upper triangular
# with K[2, 2] = 1.
MATRIX_ATOL = 1e-3


class CalibrationError(InputError):
    """A calibration file that cannot be used; the message names the file, camera and key."""


@dataclass(frozen=True)
class CameraCalibration:
    """One calibrated pinhole camera.

    Attributes:
        name: the camera id (``Camera``, ``Camera_01``, ...), also the video and h5 stem.
        intrinsic: [3, 3] K in pixels.
        world_to_camera: [4, 4] homogeneous world-to-camera transform.
        width, height: image size in pixels.
        fps: frames per second, or None when the file does not say.
        size_guessed: the file gave no image size; ``width`` and ``height`` are twice the
            principal point (``RawScene`` takes the images' size instead).
    """

    name: str
    intrinsic: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int
    fps: float | None = None
    size_guessed: bool = False

    @property
    def projection(self) -> np.ndarray:
        """[4, 4] world to homogeneous pixel: K @ [R|t], padded."""
        return projection_matrix(self.intrinsic, self.world_to_camera)

    @property
    def center(self) -> np.ndarray:
        """[3] camera centre in world metres."""
        return camera_centre(self.world_to_camera)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points.

        Args:
            points: [..., 3] world metres.

        Returns:
            tuple: pixels [..., 2] (u right, v down; pixel centres at integers) and depth
            [...] along the optical axis in metres (negative behind the camera).
        """
        camera = points @ self.world_to_camera[:3, :3].T + self.world_to_camera[:3, 3]
        depth = camera[..., 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            uv = (camera @ self.intrinsic.T)[..., :2] / depth[..., None]
        return uv, depth


def _matrix(sensor: dict, key: str, shape: tuple[int, int], where: str) -> np.ndarray:
    if key not in sensor:
        raise CalibrationError(f'{where}: missing key {key!r}')
    try:
        matrix = np.asarray(sensor[key], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise CalibrationError(f'{where}: key {key!r} is not a numeric matrix ({error})') from None
    if matrix.shape != shape:
        raise CalibrationError(f'{where}: key {key!r} has shape {matrix.shape}, expected {shape}')
    if not np.isfinite(matrix).all():
        raise CalibrationError(f'{where}: key {key!r} holds non-finite values')
    return matrix


def _check_intrinsic(intrinsic: np.ndarray, key: str, where: str) -> None:
    """Refuse a K that is not a pinhole matrix with positive focal lengths."""
    if not intrinsic.any():
        raise CalibrationError(f'{where}: key {key!r} is all zeros; expected K in pixels')
    if intrinsic[0, 0] <= 0 or intrinsic[1, 1] <= 0:
        raise CalibrationError(
            f'{where}: key {key!r} has non-positive focal lengths (fx = {intrinsic[0, 0]:g}, '
            f'fy = {intrinsic[1, 1]:g}); expected K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]'
        )
    # project() divides by the camera depth, which is right only for this last row.
    lower = intrinsic[[1, 2, 2], [0, 0, 1]]
    if np.abs(lower).max() > MATRIX_ATOL or abs(intrinsic[2, 2] - 1) > MATRIX_ATOL:
        raise CalibrationError(
            f'{where}: key {key!r} is not upper triangular with last row (0, 0, 1): '
            f'{intrinsic.tolist()}'
        )


def _check_rotation(rotation: np.ndarray, key: str, where: str) -> None:
    """Refuse a left 3x3 of [R|t] that is not a rotation (orthonormal, det +1)."""
    if not rotation.any():
        raise CalibrationError(
            f'{where}: key {key!r} does not hold a rotation [R|t]: its 3x3 part R is all zeros'
        )
    det = np.linalg.det(rotation)
    error = np.abs(rotation @ rotation.T - np.eye(3)).max()
    if abs(det - 1) > MATRIX_ATOL or error > MATRIX_ATOL:
        raise CalibrationError(
            f'{where}: key {key!r} does not hold a rotation [R|t]: det R = {det:.6g}, '
            f'max |R R^T - I| = {error:.3g} (expected det R = 1, R R^T = I; a world-to-camera '
            'transform in the OpenCV frame)'
        )


def _rq(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RQ decomposition of a 3x3 matrix: (upper triangular, orthogonal), from numpy's QR
    of the row-reversed transpose."""
    flip = np.eye(3)[::-1]
    q, r = np.linalg.qr((flip @ matrix).T)
    return flip @ r.T @ flip, flip @ q.T


def decompose_camera_matrix(camera_matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split P = s K [R|t] (any non-zero scale s, of either sign) into K and [R|t].

    K has positive focal lengths and K[2, 2] = 1 and R has det +1, the OpenCV convention;
    the sign of s is the one that makes det R = +1 (with positive focal lengths, a
    negative s is otherwise indistinguishable from a reflected R).

    Args:
        camera_matrix: [3, 4] P, world to homogeneous pixels.

    Returns:
        tuple: K [3, 3] and world-to-camera [R|t] [3, 4], with K @ [R|t] = P / s.

    Raises:
        ValueError: the left 3x3 of P is singular.
    """
    left = camera_matrix[:, :3]
    if abs(np.linalg.det(left)) <= 1e-12 * np.linalg.norm(left) ** 3:
        raise ValueError('its left 3x3 part is singular, so it is not K [R|t]')
    upper, rotation = _rq(left)
    signs = np.diag(np.sign(np.diag(upper)))  # positive diagonal of K; signs @ signs = I
    upper, rotation = upper @ signs, signs @ rotation
    scale = upper[2, 2] * np.sign(np.linalg.det(rotation))
    intrinsic = upper / upper[2, 2]
    rotation = rotation * np.sign(scale)
    translation = np.linalg.solve(intrinsic, camera_matrix[:, 3]) / scale
    return intrinsic, np.c_[rotation, translation]


def _check_camera_matrix(
    camera_matrix: np.ndarray, intrinsic: np.ndarray, extrinsic: np.ndarray, where: str
) -> None:
    """Refuse a cameraMatrix that is not K [R|t] up to scale (``CAMERA_MATRIX_RTOL``)."""
    expected = intrinsic @ extrinsic
    scale = np.sum(camera_matrix * expected) / np.sum(expected * expected)
    distance = np.linalg.norm(camera_matrix - scale * expected) / np.linalg.norm(camera_matrix)
    if not distance <= CAMERA_MATRIX_RTOL:
        raise CalibrationError(
            f"{where}: key 'cameraMatrix' is not intrinsicMatrix @ extrinsicMatrix up to scale "
            f'(relative difference {distance:.3g}, tolerance {CAMERA_MATRIX_RTOL:g}); fix or '
            "remove 'cameraMatrix', or the other two"
        )


def _attributes(sensor: dict, where: str) -> dict[str, str]:
    attributes = {}
    for item in sensor.get('attributes', []):
        if not isinstance(item, dict) or 'name' not in item or 'value' not in item:
            raise CalibrationError(f'{where}: malformed entry in "attributes": {item!r}')
        attributes[str(item['name'])] = str(item['value'])
    return attributes


def _number(attributes: dict[str, str], name: str, cast, where: str):
    if name not in attributes:
        return None
    try:
        return cast(float(attributes[name]))
    except ValueError:
        raise CalibrationError(
            f'{where}: attribute {name!r} = {attributes[name]!r} is not a number'
        ) from None


def _pose(sensor: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    """K [3, 3] and world-to-camera [R|t] [3, 4] from the matrices the sensor has."""
    has_intrinsic, has_extrinsic = 'intrinsicMatrix' in sensor, 'extrinsicMatrix' in sensor
    camera_matrix = None
    if 'cameraMatrix' in sensor:
        camera_matrix = _matrix(sensor, 'cameraMatrix', (3, 4), where)
        if not camera_matrix.any():
            raise CalibrationError(f"{where}: key 'cameraMatrix' is all zeros")
    decomposed = None
    if camera_matrix is not None and not (has_intrinsic and has_extrinsic):
        try:
            decomposed = decompose_camera_matrix(camera_matrix)
        except ValueError as error:
            raise CalibrationError(f"{where}: key 'cameraMatrix': {error}") from None
        if not has_intrinsic and not has_extrinsic:
            return decomposed  # fx, fy > 0, K[2, 2] = 1 and det R = +1 by construction
    for key, present in (('intrinsicMatrix', has_intrinsic), ('extrinsicMatrix', has_extrinsic)):
        if not present and decomposed is None:
            raise CalibrationError(
                f'{where}: missing key {key!r} (a camera needs intrinsicMatrix and '
                'extrinsicMatrix, or cameraMatrix)'
            )
    # One of the two missing beside cameraMatrix: taken from its decomposition; the other
    # must agree with it (checked against cameraMatrix below).
    intrinsic = (
        _matrix(sensor, 'intrinsicMatrix', (3, 3), where) if has_intrinsic else decomposed[0]
    )
    extrinsic = (
        _matrix(sensor, 'extrinsicMatrix', (3, 4), where) if has_extrinsic else decomposed[1]
    )
    _check_intrinsic(intrinsic, 'intrinsicMatrix', where)
    _check_rotation(extrinsic[:, :3], 'extrinsicMatrix', where)
    if camera_matrix is not None:
        _check_camera_matrix(camera_matrix, intrinsic, extrinsic, where)
    return intrinsic, extrinsic


def _camera(sensor: dict, where: str) -> CameraCalibration:
    name = str(sensor['id'])
    intrinsic, extrinsic = _pose(sensor, where)
    world_to_camera = np.eye(4)
    world_to_camera[:3] = extrinsic
    attributes = _attributes(sensor, where)
    width = _number(attributes, 'frameWidth', int, where)
    height = _number(attributes, 'frameHeight', int, where)
    if width is None or height is None:
        # Without the attributes the principal point is the best guess of the image centre.
        width, height = int(round(2 * intrinsic[0, 2])), int(round(2 * intrinsic[1, 2]))
        print_log(
            f'{where}: no "frameWidth"/"frameHeight" attributes; image size guessed from the '
            f'principal point as {width}x{height}',
            logger='current',
            level=logging.WARNING,
        )
    if width <= 0 or height <= 0:
        raise CalibrationError(
            f'{where}: image size {width}x{height} is not positive (attributes "frameWidth" '
            'and "frameHeight", or the principal point when they are missing)'
        )
    return CameraCalibration(
        name,
        intrinsic,
        world_to_camera,
        width,
        height,
        _number(attributes, 'fps', float, where),
        size_guessed='frameWidth' not in attributes or 'frameHeight' not in attributes,
    )


def load_calibration(path: str | Path) -> dict[str, CameraCalibration]:
    """Read the cameras of a ``calibration.json``, keyed by camera id, in file order.

    Sensors whose ``type`` is ``camera`` in any case (or that have no type) are cameras;
    the others are skipped and logged by id and type.

    Raises:
        CalibrationError: naming the file, the camera and the key at fault.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f'{path}: calibration file not found')
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CalibrationError(f'{path}: not valid JSON ({error})') from None
    sensors = content.get('sensors') if isinstance(content, dict) else None
    if not isinstance(sensors, list):
        found = 'missing' if sensors is None else f'a {type(sensors).__name__}, not a list'
        raise CalibrationError(f'{path}: key "sensors" (a list of sensors) is {found}')
    cameras, skipped = {}, []
    for index, sensor in enumerate(sensors):
        if not isinstance(sensor, dict):
            raise CalibrationError(f'{path}: sensors[{index}] is not an object: {sensor!r}')
        sensor_type = sensor.get('type', 'camera')
        if str(sensor_type).lower() != 'camera':
            skipped.append(f'{sensor.get("id", f"sensors[{index}]")} ({sensor_type})')
            continue
        if 'id' not in sensor:
            raise CalibrationError(f'{path}: sensors[{index}] has no "id"')
        where = f'{path}: camera {sensor["id"]!r}'
        if str(sensor['id']) in cameras:
            raise CalibrationError(f'{where}: listed twice')
        cameras[str(sensor['id'])] = _camera(sensor, where)
    if skipped:
        print_log(
            f'{path}: skipped {len(skipped)} sensors whose type is not "camera": '
            f'{", ".join(skipped)}',
            logger='current',
        )
    if not cameras:
        raise CalibrationError(
            f'{path}: no sensor of type "camera"'
            + (f' (skipped: {", ".join(skipped)})' if skipped else '')
        )
    return cameras
