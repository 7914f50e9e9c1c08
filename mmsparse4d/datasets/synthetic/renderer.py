"""Ray-cast rendering of a synthetic scene with a depth buffer, per camera.

The static part (textured floor, racks) is rendered once per camera; each frame then casts
rays only inside the projected 2D box of each moving object, depth-tests them against
what is already there, and records which object owns each pixel. The result is exact
occlusion: visible 2D boxes come from the owned pixels, full boxes from the object alone.
Depth is the distance along the optical axis (Isaac Sim's distance_to_image_plane).
"""

from dataclasses import dataclass

import numpy as np

from ..aicity.calibration import CameraCalibration
from .object_shapes import DARK
from .scene_model import Box, SceneModel

LIGHT = np.array([0.35, -0.5, 0.8]) / np.linalg.norm([0.35, -0.5, 0.8])
NO_OBJECT = -1


@dataclass
class ObjectPixels:
    """What one object left in one camera's frame (pixel boxes: xmin, ymin, xmax, ymax)."""

    full_box: np.ndarray | None  # box of all its pixels, ignoring occluders
    full_pixels: int
    visible_box: np.ndarray | None  # box of the pixels it owns after the depth test
    visible_pixels: int


def _ray_directions(camera: CameraCalibration, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """World directions [M, 3] through pixels (u, v), scaled so camera depth = ray parameter."""
    inverse_k = np.linalg.inv(camera.intrinsic)
    pixels = np.stack([us, vs, np.ones_like(us)], axis=-1).astype(np.float64)
    return (pixels @ inverse_k.T) @ camera.world_to_camera[:3, :3]


def _intersect_box(origin: np.ndarray, directions: np.ndarray, box: Box):
    """Nearest hit of rays with a yaw-rotated box: (t [M], local normal axis [M], hit [M])."""
    cos, sin = np.cos(box.yaw), np.sin(box.yaw)
    to_local = np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]])
    o = to_local @ (origin - box.center)
    d = directions @ to_local.T
    half = box.scale / 2
    with np.errstate(divide='ignore', invalid='ignore'):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    near = np.minimum(t1, t2)
    far = np.maximum(t1, t2)
    near = np.where(np.isnan(near), -np.inf, near)
    far = np.where(np.isnan(far), np.inf, far)
    t_near = near.max(axis=1)
    t_far = far.min(axis=1)
    hit = (t_far >= t_near) & (t_near > 1e-6)
    return t_near, near.argmax(axis=1), hit, o + t_near[:, None] * d


def _intersect_parts(origin: np.ndarray, directions: np.ndarray, box: Box):
    """Nearest hit of rays with the parts of ``box`` (``object_shapes``): (t [M], hit face
    axis [M], hit [M], hit point in the hit part's frame [M, 3], part index [M])."""
    cos, sin = np.cos(box.yaw), np.sin(box.yaw)
    to_world = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    best_t = np.full(len(directions), np.inf)
    best_axis = np.zeros(len(directions), dtype=np.int64)
    best_local = np.zeros((len(directions), 3))
    best_part = np.full(len(directions), -1)
    for index, (centre, size, _) in enumerate(box.parts):
        centre = box.center + to_world @ (np.asarray(centre) * box.scale)
        part = Box(centre, np.asarray(size) * box.scale, box.yaw, box.color)
        t, axis, hit, local = _intersect_box(origin, directions, part)
        closer = hit & (t < best_t)
        best_t[closer], best_axis[closer] = t[closer], axis[closer]
        best_local[closer], best_part[closer] = local[closer], index
    return best_t, best_axis, best_part >= 0, best_local, best_part


def _part_colours(box: Box) -> np.ndarray:
    """[P, 3] RGB of each part of ``box`` by its tone."""
    tones = {'body': box.color, 'accent': box.accent, 'dark': DARK}
    return np.array([tones[tone] for _, _, tone in box.parts], dtype=np.float64)


def _shade(color: np.ndarray, axis: np.ndarray, yaw: float, sign: np.ndarray) -> np.ndarray:
    """Lambert shading of box faces: axis (0, 1, 2) and side (+-1) give the face normal."""
    normals_local = np.zeros((len(axis), 3))
    normals_local[np.arange(len(axis)), axis] = sign
    cos, sin = np.cos(yaw), np.sin(yaw)
    normals = normals_local @ np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]])
    light = np.clip(normals @ LIGHT, 0, None)
    return color[None, :] * (0.45 + 0.55 * light[:, None])


class CameraRenderer:
    """Renders frames of one camera: RGB uint8 [H, W, 3], depth float32 metres [H, W]."""

    def __init__(self, scene: SceneModel, camera: CameraCalibration, texture_seed: int):
        self.camera = camera
        self.origin = camera.center
        height, width = camera.height, camera.width
        vs, us = np.mgrid[0:height, 0:width]
        directions = _ray_directions(camera, us.ravel(), vs.ravel())
        depth = np.full(height * width, np.inf)
        color = np.tile(np.array([0.62, 0.66, 0.72]), (height * width, 1))  # far wall / sky
        # Floor (z = 0), with 1 m tiles and per-tile noise so that it has texture.
        with np.errstate(divide='ignore', invalid='ignore'):
            t_floor = -self.origin[2] / directions[:, 2]
        on_floor = (t_floor > 0) & np.isfinite(t_floor)
        points = self.origin[:2] + t_floor[on_floor, None] * directions[on_floor, :2]
        half = np.array(scene.floor_size) / 2
        inside = (np.abs(points) <= half).all(axis=1)
        index = np.flatnonzero(on_floor)[inside]
        points = points[inside]
        tiles = np.floor(points).astype(np.int64)
        noise = np.random.default_rng(texture_seed).uniform(0.85, 1.15, (4096,))
        tile_noise = noise[(tiles[:, 0] * 73856093 ^ tiles[:, 1] * 19349663) % 4096]
        checker = ((tiles[:, 0] + tiles[:, 1]) % 2) * 0.12 + 0.5
        lines = (np.abs(points - np.round(points)) < 0.03).any(axis=1)
        floor_gray = np.where(lines, 0.85, checker * tile_noise)
        color[index] = floor_gray[:, None] * np.array([0.95, 0.9, 0.8])
        depth[index] = t_floor[index]
        for rack in scene.racks:
            t, axis, hit, local = _intersect_box(self.origin, directions, rack)
            closer = hit & (t < depth)
            # Shelves: darker bands every 0.8 m of height.
            band = (np.floor((local[closer, 2] + rack.scale[2] / 2) / 0.8) % 2) * 0.25 + 0.75
            sign = np.sign(local[closer, axis[closer]])
            color[closer] = _shade(rack.color, axis[closer], rack.yaw, sign) * band[:, None]
            depth[closer] = t[closer]
        self.background_rgb = color.reshape(height, width, 3)
        self.background_depth = depth.reshape(height, width)

    def _object_region(self, box: Box):
        from ..aicity.ground_truth import box_corners

        uv, z = self.camera.project(box_corners(box.center, box.scale, box.yaw))
        width, height = self.camera.width, self.camera.height
        if (z <= 0.05).all():
            return None
        if (z <= 0.05).any():  # straddles the camera plane: cast over the whole image
            return 0, 0, width - 1, height - 1
        x0, y0 = np.floor(uv.min(axis=0)).astype(int)
        x1, y1 = np.ceil(uv.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)
        if x0 > x1 or y0 > y1:
            return None
        return x0, y0, x1, y1

    def render(self, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray, list[ObjectPixels]]:
        """Render the moving objects ``boxes`` over the static background.

        Returns:
            tuple: RGB uint8 [H, W, 3], depth float32 metres [H, W] (0 where nothing is hit),
            and per box its full and visible pixel boxes.
        """
        color = self.background_rgb.copy()
        depth = self.background_depth.copy()
        owner = np.full(depth.shape, NO_OBJECT, dtype=np.int32)
        regions, full = [], []
        for index, box in enumerate(boxes):
            region = self._object_region(box)
            regions.append(region)
            full.append((None, 0))
            if region is None:
                continue
            x0, y0, x1, y1 = region
            vs, us = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
            directions = _ray_directions(self.camera, us.ravel(), vs.ravel())
            if box.parts is None:
                t, axis, hit, local = _intersect_box(self.origin, directions, box)
            else:
                t, axis, hit, local, part = _intersect_parts(self.origin, directions, box)
            if not hit.any():
                continue
            hit_v, hit_u = vs.ravel()[hit], us.ravel()[hit]
            full[index] = (
                np.array([hit_u.min(), hit_v.min(), hit_u.max(), hit_v.max()]),
                hit.sum(),
            )
            closer = hit & (t < depth[vs.ravel(), us.ravel()])
            cv, cu = vs.ravel()[closer], us.ravel()[closer]
            depth[cv, cu] = t[closer]
            owner[cv, cu] = index
            sign = np.sign(local[closer, axis[closer]])
            if box.parts is not None:
                lit = _shade(np.ones(3), axis[closer], box.yaw, sign)
                color[cv, cu] = _part_colours(box)[part[closer]] * lit
                continue
            # Body colour with the class's accent band on top, darker lower third (legs,
            # chassis), lit by face.
            height = local[closer, 2] + box.scale[2] / 2
            lower = height < box.scale[2] / 3
            shaded = _shade(box.color, axis[closer], box.yaw, sign)
            if box.accent is not None:
                top = height > box.scale[2] * (1 - box.accent_top)
                accent = _shade(box.accent, axis[closer], box.yaw, sign)
                shaded = np.where(top[:, None], accent, shaded)
            color[cv, cu] = shaded * np.where(lower, 0.6, 1.0)[:, None]
        pixels = []
        for index, region in enumerate(regions):
            full_box, full_count = full[index]
            visible_box, visible_count = None, 0
            if region is not None and full_box is not None:
                x0, y0, x1, y1 = region
                mine = owner[y0 : y1 + 1, x0 : x1 + 1] == index
                visible_count = int(mine.sum())
                if visible_count:
                    rows, cols = np.nonzero(mine)
                    visible_box = np.array(
                        [cols.min() + x0, rows.min() + y0, cols.max() + x0, rows.max() + y0]
                    )
            pixels.append(ObjectPixels(full_box, int(full_count), visible_box, visible_count))
        rgb = (np.clip(color, 0, 1) * 255).astype(np.uint8)
        depth = np.where(np.isfinite(depth), depth, 0).astype(np.float32)
        return rgb, depth, pixels
