"""``ground_truth.json`` of an AI City 2025 / Isaac Sim scene.

Top level: frame id (string) -> list of objects. Keys are accepted with spaces, as the
real files write them (``"3d location"``), or with underscores, as the dataset card shows
them (``"3d_location"``). ``3d location`` is the box centroid in world metres,
``3d bounding box scale`` its extents (w, l, h) along the object's own x, y and z axes,
``3d bounding box rotation`` (pitch, roll, yaw) in radians; yaw turns the object's x axis
counter-clockwise from the world x axis (checked by projecting corners onto the visible 2D
boxes in tests/test_datasets/test_synthetic.py).
"""

import json
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mmengine.logging import print_log

from ...utils.input_error import InputError
from .calibration import CalibrationError
from .class_names import (
    CLASSES,
    UnknownClassError,
    canonical_class_name,
    ignore_keys,
    normalise_class_name,
)

__all__ = ['CLASSES', 'GroundTruthError', 'GroundTruthObject', 'box_corners', 'load_ground_truth']


class GroundTruthError(InputError):
    """A ground-truth file that cannot be used; the message names file, frame and key."""


@dataclass(frozen=True)
class GroundTruthObject:
    """One object in one frame.

    Attributes:
        class_name: one of ``KNOWN_CLASSES`` (``Person``, ``Forklift``, ...), whatever
            spelling the file uses (``class_names.canonical_class_name``).
        object_id: track id, unique per scene.
        location: [3] centroid, world metres.
        scale: [3] extents (w, l, h) along the object's x, y, z axes, metres.
        rotation: [3] (pitch, roll, yaw) radians.
        visible_boxes: camera id -> [4] occlusion-clipped (xmin, ymin, xmax, ymax) pixels.
        full_boxes: camera id -> [4] box of the whole projected object (Isaac Sim's loose
            box), where the file has it.
        object_name: unique asset name, where the file has it.
    """

    class_name: str
    object_id: int
    location: np.ndarray
    scale: np.ndarray
    rotation: np.ndarray
    visible_boxes: dict[str, np.ndarray] = field(default_factory=dict)
    full_boxes: dict[str, np.ndarray] = field(default_factory=dict)
    object_name: str | None = None

    @property
    def yaw(self) -> float:
        return float(self.rotation[2])

    def corners(self) -> np.ndarray:
        """[8, 3] world corners: Rz(yaw) @ (scale * unit cube) + location."""
        return box_corners(self.location, self.scale, self.yaw)


def box_corners(location: np.ndarray, scale: np.ndarray, yaw: float) -> np.ndarray:
    """[8, 3] corners of a yaw-rotated box (centroid, (w, l, h) extents, yaw in radians)."""
    signs = np.array(
        [[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=float
    )
    cos, sin = np.cos(yaw), np.sin(yaw)
    rotation = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    return (signs * np.asarray(scale)) @ rotation.T + np.asarray(location)


def _get(item: dict, key: str):
    """Read a spaced key, falling back to its underscored spelling."""
    if key in item:
        return item[key]
    return item.get(key.replace(' ', '_'))


def _vector(item: dict, key: str, size: int, where: str) -> np.ndarray:
    value = _get(item, key)
    if value is None:
        raise GroundTruthError(f'{where}: missing key {key!r}')
    try:
        vector = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GroundTruthError(f'{where}: key {key!r} is not numeric: {value!r}') from None
    if vector.shape != (size,) or not np.isfinite(vector).all():
        raise GroundTruthError(f'{where}: key {key!r} must be {size} finite numbers: {value!r}')
    return vector


def _boxes(item: dict, key: str, where: str, cameras: Collection[str] | None) -> dict:
    boxes = _get(item, key) or {}
    if not isinstance(boxes, dict):
        raise GroundTruthError(f'{where}: key {key!r} must map camera ids to boxes')
    result = {}
    for camera, box in boxes.items():
        if cameras is not None and camera not in cameras:
            raise CalibrationError(
                f'{where}: key {key!r} has a box in camera {camera!r}, which the calibration '
                f'does not list (it has {sorted(cameras)})'
            )
        box = np.asarray(box, dtype=np.float64)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise GroundTruthError(f'{where}: {key!r}[{camera!r}] must be 4 finite numbers')
        result[camera] = box
    return result


def load_ground_truth(
    path: str | Path,
    cameras: Collection[str] | None = None,
    ignore_classes: Iterable[str] = (),
) -> dict[int, list[GroundTruthObject]]:
    """Read ``ground_truth.json`` into frame index -> objects, frames in ascending order.

    Every ``object type`` is read through ``canonical_class_name``: objects carry one of
    ``KNOWN_CLASSES`` whatever the file's spelling.

    Args:
        cameras: the calibration's camera ids; a 2D box in any other camera is an error.
        ignore_classes: classes whose objects are dropped (any spelling of a known class,
            or a name outside them such as ``box``); how many were dropped per class is
            logged.

    Raises:
        GroundTruthError: a missing or malformed field, or an object type that is neither
            a known class nor ignored, naming file, frame, object and key.
        CalibrationError: a camera in the ground truth that the calibration lacks.
    """
    path = Path(path)
    if not path.is_file():
        raise GroundTruthError(f'{path}: ground-truth file not found')
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise GroundTruthError(f'{path}: not valid JSON ({error})') from None
    if not isinstance(content, dict):
        raise GroundTruthError(f'{path}: the top level must map frame ids to object lists')
    ignored = ignore_keys(ignore_classes)
    dropped = Counter()
    frames, keys = {}, {}
    for frame_key, items in content.items():
        try:
            frame = int(frame_key)
        except ValueError:
            raise GroundTruthError(f'{path}: frame key {frame_key!r} is not an integer') from None
        if frame < 0:
            raise GroundTruthError(
                f'{path}: frame key {frame_key!r} is negative (frames count from 0)'
            )
        if frame in keys:
            raise GroundTruthError(
                f'{path}: frame keys {keys[frame]!r} and {frame_key!r} are both frame {frame}'
            )
        keys[frame] = frame_key
        if not isinstance(items, list):
            raise GroundTruthError(f'{path}: frame {frame_key} must hold a list of objects')
        objects, first_index = [], {}
        for index, item in enumerate(items):
            where = f'{path}: frame {frame_key}, object {index}'
            if not isinstance(item, dict):
                raise GroundTruthError(f'{where}: must be an object (a JSON dict)')
            class_name, object_id = _get(item, 'object type'), _get(item, 'object id')
            if class_name is None or object_id is None:
                raise GroundTruthError(f"{where}: missing key 'object type' or 'object id'")
            try:
                object_id = int(object_id)
            except (TypeError, ValueError):
                raise GroundTruthError(
                    f"{where}: key 'object id' is not an integer: {object_id!r}"
                ) from None
            try:
                canonical = canonical_class_name(class_name)
                key = normalise_class_name(canonical)
            except UnknownClassError as error:
                canonical, key, unknown = None, normalise_class_name(class_name), error
            if key in ignored:
                dropped[ignored[key]] += 1
                continue
            if canonical is None:
                raise GroundTruthError(
                    f"{where} (object id {object_id}), key 'object type': {unknown.message}; "
                    'to drop such objects, list the name in ignore_classes (--ignore-classes)'
                )
            if object_id in first_index:
                raise GroundTruthError(
                    f"{where}: 'object id' {object_id} appears twice in this frame (also object "
                    f'{first_index[object_id]})'
                )
            first_index[object_id] = index
            scale = _vector(item, '3d bounding box scale', 3, where)
            if (scale <= 0).any():
                raise GroundTruthError(
                    f"{where}: key '3d bounding box scale' {scale.tolist()}: sizes must be > 0 "
                    'metres'
                )
            rotation = _vector(item, '3d bounding box rotation', 3, where)
            if (np.abs(rotation) > 2 * np.pi + 1e-6).any():
                raise GroundTruthError(
                    f"{where}: key '3d bounding box rotation' {rotation.tolist()}: angles must "
                    'be radians (these look like degrees)'
                )
            objects.append(
                GroundTruthObject(
                    class_name=canonical,
                    object_id=object_id,
                    location=_vector(item, '3d location', 3, where),
                    scale=scale,
                    rotation=rotation,
                    visible_boxes=_boxes(item, '2d bounding box visible', where, cameras),
                    full_boxes=_boxes(item, '2d bounding box', where, cameras),
                    object_name=_get(item, 'object name'),
                )
            )
        frames[frame] = objects
    if dropped:
        counts = ', '.join(f'{name} {count}' for name, count in sorted(dropped.items()))
        print_log(
            f'{path}: dropped {dropped.total()} objects of ignored classes ({counts})',
            logger='current',
        )
    return dict(sorted(frames.items()))
