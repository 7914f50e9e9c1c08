"""Raw scenes to OVPKL pickles: one per scene, or one per camera group.

Each pickle is ``{"metadata": {...}, "infos": [one dict per frame, in frame order]}``,
the layout NVIDIA's TAO Sparse4D reads (formats.md §5.3), with these differences, each on
purpose:

* the camera transform is stored as ``world_to_camera`` (TAO's field of that content is
  misnamed ``sensor2world_transform``; the dataset reads both);
* ``gt_boxes`` keep yaw with the ground truth's sign (TAO negates it, marked unresolved there);
* velocities are central differences where both neighbouring frames have the object.

Frame info::

    frame_idx, timestamp (s), token "<scene[+group]>__<frame:09d>", scene_name, group_name,
    cams: {camera: {data_path: (file, h5 key | mp4 frame index), depth_map_path:
           (file, h5 key) | None, sample_data_token, cam_intrinsic [3, 3],
           world_to_camera [4, 4] (re-centred), image_wh (W, H)}},
    gt_boxes [N, 7] (x, y, z, w, l, h, yaw; re-centred), gt_names [N], gt_velocity [N, 3],
    instance_inds [N], asset_inds [N], valid_flag [N], gt_visibility [N x {camera: ratio}]

Paths are relative to ``data_root``.
"""

import json
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...structures.camera_geometry import recentre_on_origin
from ..aicity import CLASSES, GroundTruthError, RawScene
from .camera_groups import CameraGroup, cameras_origin

SCHEMA_VERSION = 'mmsparse4d_ovpkl/v1'


class AssetIds:
    """Global asset ids shared across scenes, keyed by object name (else scene:object id)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.ids: dict[str, int] = {}
        if self.path and self.path.is_file():
            self.ids = dict(json.loads(self.path.read_text())['objects'])

    def get(self, scene_name: str, object_id: int, object_name: str | None) -> int:
        key = object_name or f'{scene_name}:{object_id}'
        if key not in self.ids:
            self.ids[key] = len(self.ids)
        return self.ids[key]

    def save(self) -> None:
        content = {
            'no_of_objects': len(self.ids),
            'max_object_id': max(self.ids.values(), default=-1),
            'objects': self.ids,
        }
        self.path.write_text(json.dumps(content, indent=1))


def _relative(path: Path, data_root: Path) -> str:
    try:
        return str(path.resolve().relative_to(data_root.resolve()))
    except ValueError:
        raise ValueError(f'{path} is not inside the data root {data_root}') from None


def _velocities(scene: RawScene, frame: int, objects, fps: float) -> np.ndarray:
    """Central differences of the centroids where both neighbours exist, else one-sided."""

    def by_id(f):
        return {o.object_id: o.location for o in scene.objects(f)} if f >= 0 else {}

    previous, following = by_id(frame - 1), by_id(frame + 1)
    velocities = np.zeros((len(objects), 3))
    for index, obj in enumerate(objects):
        before, after = previous.get(obj.object_id), following.get(obj.object_id)
        if before is not None and after is not None:
            velocities[index] = (after - before) * fps / 2
        elif before is not None:
            velocities[index] = (obj.location - before) * fps
        elif after is not None:
            velocities[index] = (after - obj.location) * fps
    return velocities


def _visibility(obj, cameras) -> dict[str, float]:
    """Visible over full 2D box area per camera (1 where only the visible box is known)."""
    ratios = {}
    for camera in cameras:
        visible = obj.visible_boxes.get(camera)
        if visible is None:
            continue
        full = obj.full_boxes.get(camera)
        if full is None:
            ratios[camera] = 1.0
            continue

        def area(box):
            return max(box[2] - box[0] + 1, 0) * max(box[3] - box[1] + 1, 0)

        ratios[camera] = float(min(area(visible) / max(area(full), 1), 1.0))
    return ratios


def check_scene_classes(scene: RawScene, classes: Sequence[str]) -> None:
    """Refuse ground-truth objects of a class outside ``classes``, which converting would
    otherwise drop without a word. Classes meant to be dropped are ignored when the scene
    is read (``RawScene(..., ignore_classes=...)``), which logs how many objects went.

    Raises:
        GroundTruthError: naming the file, each such class with its object count, and the
            first frame and object id of each.
    """
    outside = {}  # class -> [count, first frame, first object id]
    for frame, objects in scene.ground_truth.items():
        for obj in objects:
            if obj.class_name not in classes:
                outside.setdefault(obj.class_name, [0, frame, obj.object_id])[0] += 1
    if outside:
        found = '; '.join(
            f'{name!r}: {count} objects, the first in frame {frame}, object id {object_id}'
            for name, (count, frame, object_id) in outside.items()
        )
        raise GroundTruthError(
            f'objects of classes that are not among the classes to convert '
            f'({", ".join(classes)}): {found}; add the classes to --classes, or list them in '
            '--ignore-classes to drop their objects',
            scene.root / 'ground_truth.json',
        )


def convert_scene(
    scene: RawScene,
    data_root: str | Path,
    groups: Sequence[CameraGroup] | None = None,
    classes: Sequence[str] = CLASSES,
    asset_ids: AssetIds | None = None,
    progress: bool = True,
) -> list[tuple[str, dict]]:
    """OVPKL content of one scene: a list of (sub-scene name, pickle content).

    Args:
        groups: camera groups, each becoming one re-centred sub-scene ``<scene>+<group>``;
            None: one sub-scene with every camera, re-centred on ``cameras_origin`` of
            them all (the origin ``tools/infer.py`` takes by default).
        classes: the classes converted; an object of another class is an error (classes
            to drop are ignored when the scene is read: ``RawScene(ignore_classes=...)``).
    """
    if scene.ground_truth is None:
        raise FileNotFoundError(f'{scene.root}: no ground_truth.json to convert')
    check_scene_classes(scene, classes)
    data_root = Path(data_root)
    asset_ids = asset_ids or AssetIds()
    fps = scene.fps
    if groups is None:
        origin = cameras_origin(list(scene.calibration.values()))
        groups = [CameraGroup('', tuple(scene.cameras), origin)]
    unknown = {c for g in groups for c in g.cameras} - set(scene.cameras)
    if unknown:
        raise KeyError(f'{scene.root}: camera groups name cameras it lacks: {sorted(unknown)}')
    results = []
    for group in groups:
        name = f'{scene.name}+{group.name}' if group.name else scene.name
        origin = np.asarray(group.origin, dtype=np.float64)
        infos = []
        frames = sorted(scene.ground_truth)
        for frame in tqdm(frames, desc=name, disable=not progress, leave=False):
            objects = [
                o
                for o in scene.objects(frame)
                if o.class_name in classes
                and (not o.visible_boxes or set(o.visible_boxes) & set(group.cameras))
            ]
            velocities = _velocities(scene, frame, objects, fps)
            token = f'{name}__{frame:09d}'
            cams = {}
            for camera in group.cameras:
                calibration = scene.calibration[camera]
                world_to_camera = recentre_on_origin(calibration.world_to_camera, origin)
                rgb_file, rgb_key = scene.rgb_source(camera, frame)
                depth = scene.depth_source(camera, frame)
                cams[camera] = {
                    'data_path': (_relative(rgb_file, data_root), rgb_key),
                    'depth_map_path': None
                    if depth is None
                    else (_relative(depth[0], data_root), depth[1]),
                    'sample_data_token': f'{token}+{camera}',
                    'cam_intrinsic': calibration.intrinsic.copy(),
                    'world_to_camera': world_to_camera,
                    'image_wh': (calibration.width, calibration.height),
                }
            boxes = np.zeros((len(objects), 7))
            for index, obj in enumerate(objects):
                boxes[index, :3] = obj.location - origin
                boxes[index, 3:6] = obj.scale
                boxes[index, 6] = obj.yaw
            infos.append(
                {
                    'frame_idx': frame,
                    'timestamp': frame / fps,
                    'token': token,
                    'scene_name': name,
                    'group_name': group.name or None,
                    'cams': cams,
                    'gt_boxes': boxes,
                    'gt_names': np.array([o.class_name for o in objects], dtype=object),
                    'gt_velocity': velocities,
                    'instance_inds': np.array([o.object_id for o in objects], dtype=np.int64),
                    'asset_inds': np.array(
                        [asset_ids.get(scene.name, o.object_id, o.object_name) for o in objects],
                        dtype=np.int64,
                    ),
                    'valid_flag': np.ones(len(objects), dtype=bool),
                    'gt_visibility': [_visibility(o, group.cameras) for o in objects],
                }
            )
        metadata = {
            'version': '2025',
            'schema_version': SCHEMA_VERSION,
            'classes': list(classes),
            'scene_name': scene.name,
            'group_name': group.name or None,
            'cameras': list(group.cameras),
            'origin': origin.tolist(),
            'fps': fps,
        }
        results.append((name, {'metadata': metadata, 'infos': infos}))
    return results


def write_ovpkl(content: dict, path: str | Path) -> None:
    with open(path, 'wb') as file:
        pickle.dump(content, file, protocol=pickle.HIGHEST_PROTOCOL)
