"""The world of a synthetic scene: floor, racks, calibrated cameras and moving objects.

Everything is in world metres with z up, the convention of the AI City 2025 data. An
object's yaw is the heading of its own x axis (its direction of travel), counter-clockwise
from the world x axis, and its scale is (w, l, h) along its own (x, y, z) axes.
"""

from dataclasses import dataclass

import numpy as np

from ..aicity.calibration import CameraCalibration
from .object_shapes import check_shapes

# Extents (along heading, lateral, height) in metres, speed range in m/s, sampling weight and
# appearance per class. A class is recognisable by its look, as real assets are: a body
# colour (None: any colour, as people's clothes) and a band of an accent colour over the top
# ``accent_top`` of the height (head, mast, sensor deck). Without it the three humanoid
# classes, which have nearly the same size, could only be told apart by chance.
CLASS_SPECS = {
    'Person': dict(
        scale=(0.45, 0.6, 1.75),
        speed=(0.8, 1.6),
        weight=0.55,
        body=None,
        accent=(0.87, 0.67, 0.52),
        accent_top=0.13,
    ),
    'Forklift': dict(
        scale=(2.6, 1.2, 2.2),
        speed=(1.0, 2.5),
        weight=0.12,
        body=(0.95, 0.72, 0.08),
        accent=(0.12, 0.12, 0.12),
        accent_top=0.35,
    ),
    'NovaCarter': dict(
        scale=(0.7, 0.5, 0.45),
        speed=(0.6, 1.2),
        weight=0.1,
        body=(0.18, 0.18, 0.2),
        accent=(0.35, 0.85, 0.45),
        accent_top=0.3,
    ),
    'Transporter': dict(
        scale=(1.3, 0.9, 0.35),
        speed=(0.8, 1.5),
        weight=0.1,
        body=(0.2, 0.38, 0.82),
        accent=(0.82, 0.82, 0.82),
        accent_top=0.3,
    ),
    'FourierGR1T2': dict(
        scale=(0.4, 0.6, 1.65),
        speed=(0.4, 1.0),
        weight=0.07,
        body=(0.88, 0.88, 0.9),
        accent=(0.1, 0.1, 0.12),
        accent_top=0.15,
    ),
    'AgilityDigit': dict(
        scale=(0.45, 0.65, 1.75),
        speed=(0.5, 1.1),
        weight=0.06,
        body=(0.32, 0.32, 0.36),
        accent=(0.95, 0.55, 0.12),
        accent_top=0.15,
    ),
}


@dataclass(frozen=True)
class Box:
    """A yaw-rotated box: centroid [3], extents (w, l, h) [3], yaw (radians), RGB colour.

    ``accent`` (RGB) colours the top ``accent_top`` fraction of the height, if given.
    """

    center: np.ndarray
    scale: np.ndarray
    yaw: float
    color: np.ndarray
    accent: np.ndarray | None = None
    accent_top: float = 0.0
    # (centre, size, tone) of the parts drawn instead of the whole box (``object_shapes``).
    parts: tuple | None = None

    def footprint_contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Whether the floor points [M, 2] lie within the box's footprint grown by margin."""
        cos, sin = np.cos(self.yaw), np.sin(self.yaw)
        local = points - self.center[:2]
        along = local[:, 0] * cos + local[:, 1] * sin
        across = -local[:, 0] * sin + local[:, 1] * cos
        return (np.abs(along) <= self.scale[0] / 2 + margin) & (
            np.abs(across) <= self.scale[1] / 2 + margin
        )


@dataclass(frozen=True)
class MovingObject:
    """An object travelling at constant speed along a closed smooth path.

    The path is p(s) = centre + (rx cos s + a cos(2s + phase_a), ry sin s + b sin(2s + phase_b))
    in the rotated frame of ``path_angle``; s advances so that the speed along it is constant.
    """

    object_id: int
    class_name: str
    scale: np.ndarray
    color: np.ndarray  # body colour, RGB in [0, 1]
    accent: np.ndarray  # colour of the top band, RGB in [0, 1]
    accent_top: float  # the band's share of the height
    speed: float
    path: np.ndarray  # [K, 2] dense samples of one loop, equally spaced in arc length
    start: float  # arc-length offset of frame 0, metres

    def state(self, time: float) -> tuple[np.ndarray, float, np.ndarray]:
        """Centroid [3], yaw and velocity [3] at ``time`` seconds."""
        lengths = np.linalg.norm(np.diff(self.path, axis=0, append=self.path[:1]), axis=1)
        total = lengths.sum()
        arc = (self.start + self.speed * time) % total
        cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
        index = int(np.searchsorted(cumulative, arc, side='right') - 1) % len(self.path)
        fraction = (arc - cumulative[index]) / max(lengths[index], 1e-9)
        here, there = self.path[index], self.path[(index + 1) % len(self.path)]
        position = here + fraction * (there - here)
        direction = (there - here) / max(lengths[index], 1e-9)
        yaw = float(np.arctan2(direction[1], direction[0]))
        location = np.array([position[0], position[1], self.scale[2] / 2])
        velocity = np.array([direction[0], direction[1], 0.0]) * self.speed
        return location, yaw, velocity


@dataclass(frozen=True)
class SceneModel:
    floor_size: tuple[float, float]  # x and y extent, centred on the origin
    racks: list[Box]
    cameras: list[CameraCalibration]
    objects: list[MovingObject]
    fps: float
    num_frames: int
    shapes: str = 'boxes'  # how objects are drawn: ``object_shapes.SHAPES``


def look_at_camera(
    name: str,
    position: np.ndarray,
    target: np.ndarray,
    fov_deg: float,
    width: int,
    height: int,
    fps: float,
) -> CameraCalibration:
    """A pinhole camera at ``position`` looking at ``target`` (OpenCV axes, world z up)."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    world_to_camera = np.eye(4)
    world_to_camera[:3, :3] = rotation
    world_to_camera[:3, 3] = -rotation @ position
    focal = width / 2 / np.tan(np.deg2rad(fov_deg) / 2)
    intrinsic = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    return CameraCalibration(name, intrinsic, world_to_camera, width, height, fps)


def camera_name(index: int) -> str:
    """AI City naming: Camera, Camera_01, Camera_02, ..."""
    return 'Camera' if index == 0 else f'Camera_{index:02d}'


def _racks(rng: np.random.Generator, floor: tuple[float, float]) -> list[Box]:
    racks = []
    half_x, half_y = floor[0] / 2, floor[1] / 2
    for _ in range(200):
        if len(racks) >= rng.integers(3, 7):
            break
        length, depth, height = rng.uniform(5, 9), rng.uniform(0.9, 1.3), rng.uniform(2.5, 4.0)
        yaw = float(rng.choice([0.0, np.pi / 2]))
        center = np.array(
            [rng.uniform(-half_x + 4, half_x - 4), rng.uniform(-half_y + 4, half_y - 4), height / 2]
        )
        rack = Box(center, np.array([length, depth, height]), yaw, rng.uniform(0.25, 0.6, 3))
        corners = _footprint(rack)
        if any(other.footprint_contains(corners, margin=2.5).any() for other in racks) or any(
            rack.footprint_contains(_footprint(other), margin=2.5).any() for other in racks
        ):
            continue
        racks.append(rack)
    return racks


def _footprint(box: Box) -> np.ndarray:
    cos, sin = np.cos(box.yaw), np.sin(box.yaw)
    half = box.scale[:2] / 2
    local = np.array([[x, y] for x in (-1, 0, 1) for y in (-1, 0, 1)]) * half
    return local @ np.array([[cos, sin], [-sin, cos]]) + box.center[:2]


def _cameras(rng, floor, count, width, height, fps) -> list[CameraCalibration]:
    half_x, half_y = floor[0] / 2, floor[1] / 2
    cameras = []
    for index in range(count):
        # Evenly around the perimeter with jitter, at mixed heights and headings.
        angle = 2 * np.pi * index / count + rng.uniform(-0.25, 0.25)
        position = np.array(
            [0.9 * half_x * np.cos(angle), 0.9 * half_y * np.sin(angle), rng.uniform(3.0, 8.0)]
        )
        target = np.array([rng.uniform(-0.4, 0.4) * half_x, rng.uniform(-0.4, 0.4) * half_y, 0.0])
        fov = rng.uniform(65, 90)
        cameras.append(
            look_at_camera(camera_name(index), position, target, fov, width, height, fps)
        )
    return cameras


def _path(
    rng, floor, racks, clearance, max_radius: float, min_radius: float = 1.0
) -> np.ndarray | None:
    half_x, half_y = floor[0] / 2, floor[1] / 2
    centre = rng.uniform([-0.6 * half_x, -0.6 * half_y], [0.6 * half_x, 0.6 * half_y])
    rx = rng.uniform(min_radius, max(min_radius + 0.2, max_radius * half_x))
    ry = rng.uniform(min_radius, max(min_radius + 0.2, max_radius * half_y))
    a, b = rng.uniform(0, 0.3) * rx, rng.uniform(0, 0.3) * ry
    phase_a, phase_b, angle = rng.uniform(0, 2 * np.pi, 3)
    s = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    local = np.stack(
        [
            rx * np.cos(s) + a * np.cos(2 * s + phase_a),
            ry * np.sin(s) + b * np.sin(2 * s + phase_b),
        ],
        axis=1,
    )
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    points = local @ rotation + centre
    inside = (np.abs(points[:, 0]) < half_x - clearance - 1) & (
        np.abs(points[:, 1]) < half_y - clearance - 1
    )
    if not inside.all():
        return None
    if any(rack.footprint_contains(points, margin=clearance + 0.3).any() for rack in racks):
        return None
    # Resample equally in arc length so constant speed is simple.
    lengths = np.linalg.norm(np.diff(points, axis=0, append=points[:1]), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    stations = np.linspace(0, cumulative[-1], 720, endpoint=False)
    closed = np.vstack([points, points[:1]])
    return np.stack([np.interp(stations, cumulative, closed[:, k]) for k in range(2)], axis=1)


def make_scene_model(
    seed: int,
    num_cameras: int = 6,
    num_objects: int = 10,
    num_frames: int = 300,
    fps: float = 30.0,
    width: int = 960,
    height: int = 540,
    floor_size: tuple[float, float] | None = None,
    shapes: str = 'boxes',
) -> SceneModel:
    """Draw a scene from ``seed``: the same arguments always give the same scene.
    ``shapes`` changes how the objects are drawn, not where they are.

    With at least as many objects as classes, every class appears at least once (a held-out
    scene without some class would score zero AP on it whatever the model does); the other
    objects are drawn by the classes' weights.
    """
    if not 1 <= num_cameras <= 99:
        raise ValueError(f'num_cameras must be in [1, 99], got {num_cameras}')
    rng = np.random.default_rng(seed)
    floor = floor_size or (float(rng.uniform(24, 36)), float(rng.uniform(16, 26)))
    racks = _racks(rng, floor)
    cameras = _cameras(rng, floor, num_cameras, width, height, fps)
    names = list(CLASS_SPECS)
    weights = np.array([CLASS_SPECS[n]['weight'] for n in names])
    covered = list(rng.permutation(names)) if num_objects >= len(names) else []
    objects = []
    for object_id in range(num_objects):
        if object_id < len(covered):
            class_name = str(covered[object_id])
        else:
            class_name = names[rng.choice(len(names), p=weights / weights.sum())]
        spec = CLASS_SPECS[class_name]
        scale = np.array(spec['scale']) * rng.uniform(0.92, 1.08, 3)
        if spec['body'] is None:
            body = rng.uniform(0.15, 0.95, 3)
        else:
            body = np.clip(np.array(spec['body']) * rng.uniform(0.9, 1.1, 3), 0, 1)
        path = None
        # Large loops first; smaller ones where the racks leave no room for them, and last
        # tight loops of 0.5-0.7 m radius (a layout whose racks leave a large object no room
        # for a 1 m loop; the tiers before are drawn as they always were, so a scene that
        # found its path there is unchanged).
        for attempt in range(6000):
            max_radius = 0.6 if attempt < 500 else 0.25
            min_radius = 1.0 if attempt < 2000 else 0.5
            path = _path(rng, floor, racks, float(scale[:2].max()) / 2, max_radius, min_radius)
            if path is not None:
                break
        if path is None:
            raise RuntimeError(f'seed {seed}: no rack-free path for object {object_id}')
        objects.append(
            MovingObject(
                object_id=object_id,
                class_name=class_name,
                scale=scale,
                color=body,
                accent=np.array(spec['accent']),
                accent_top=float(spec['accent_top']),
                speed=float(rng.uniform(*spec['speed'])),
                path=path,
                start=float(rng.uniform(0, 100)),
            )
        )
    return SceneModel(floor, racks, cameras, objects, fps, num_frames, check_shapes(shapes))
