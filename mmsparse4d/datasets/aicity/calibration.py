"""``calibration.json`` of an AI City 2025 / Isaac Sim scene: per-camera K and [R|t].

Conventions (formats.md §1.4): ``intrinsicMatrix`` is the 3x3 K in pixels,
``extrinsicMatrix`` the 3x4 world-to-camera [R|t] in the OpenCV camera frame (x right,
y down, z forward): ``X_cam = R @ X_world + t``; world metres with z up. Attribute values
may be strings and are always cast.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ...utils.input_error import InputError


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
    """

    name: str
    intrinsic: np.ndarray
    world_to_camera: np.ndarray
    width: int
    height: int
    fps: float | None = None

    @property
    def projection(self) -> np.ndarray:
        """[4, 4] world to homogeneous pixel: K @ [R|t], padded."""
        intrinsic = np.eye(4)
        intrinsic[:3, :3] = self.intrinsic
        return intrinsic @ self.world_to_camera

    @property
    def center(self) -> np.ndarray:
        """[3] camera centre in world metres."""
        rotation, translation = self.world_to_camera[:3, :3], self.world_to_camera[:3, 3]
        return -rotation.T @ translation

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


def _camera(sensor: dict, where: str) -> CameraCalibration:
    name = str(sensor['id'])
    intrinsic = _matrix(sensor, 'intrinsicMatrix', (3, 3), where)
    extrinsic = _matrix(sensor, 'extrinsicMatrix', (3, 4), where)
    rotation = extrinsic[:, :3]
    if abs(np.linalg.det(rotation) - 1) > 1e-3 or not np.allclose(
        rotation @ rotation.T, np.eye(3), atol=1e-3
    ):
        raise CalibrationError(f"{where}: key 'extrinsicMatrix' does not hold a rotation [R|t]")
    if intrinsic[0, 0] <= 0 or intrinsic[1, 1] <= 0:
        raise CalibrationError(f"{where}: key 'intrinsicMatrix' has non-positive focal lengths")
    world_to_camera = np.eye(4)
    world_to_camera[:3] = extrinsic
    attributes = _attributes(sensor, where)
    width = _number(attributes, 'frameWidth', int, where)
    height = _number(attributes, 'frameHeight', int, where)
    if width is None or height is None:
        # Without the attributes the principal point is the best guess of the image centre.
        width, height = int(round(2 * intrinsic[0, 2])), int(round(2 * intrinsic[1, 2]))
    return CameraCalibration(
        name, intrinsic, world_to_camera, width, height, _number(attributes, 'fps', float, where)
    )


def load_calibration(path: str | Path) -> dict[str, CameraCalibration]:
    """Read the cameras of a ``calibration.json``, keyed by camera id, in file order.

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
        raise CalibrationError(f'{path}: missing list "sensors"')
    cameras = {}
    for index, sensor in enumerate(sensors):
        if not isinstance(sensor, dict) or sensor.get('type', 'camera') != 'camera':
            continue
        if 'id' not in sensor:
            raise CalibrationError(f'{path}: sensors[{index}] has no "id"')
        where = f'{path}: camera {sensor["id"]!r}'
        if str(sensor['id']) in cameras:
            raise CalibrationError(f'{where}: listed twice')
        cameras[str(sensor['id'])] = _camera(sensor, where)
    if not cameras:
        raise CalibrationError(f'{path}: no camera sensors')
    return cameras
