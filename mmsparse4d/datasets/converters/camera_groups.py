"""Camera grouping ("BEV groups"): overlapping groups of cameras by floor coverage.

Big scenes are split into groups of cameras that watch overlapping parts of the floor; each
group is one training sub-scene, re-centred on its own origin. Coverage is computed on a
floor grid: a cell is seen by a camera when its centre (z = 0) projects inside the image in
front of the camera and lies within ``max_distance`` of it; masks are dilated by
``dilation`` cells before overlaps are measured.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..aicity.calibration import CameraCalibration


@dataclass(frozen=True)
class CameraGroup:
    """A named group of cameras and its origin (the centre of their joint floor coverage)."""

    name: str
    cameras: tuple[str, ...]
    origin: np.ndarray  # [3] world metres, z = 0


@dataclass(frozen=True)
class FloorCoverage:
    """Per-camera boolean masks [N, Gy, Gx] over a floor grid with cell centres xs, ys."""

    cameras: tuple[str, ...]
    masks: np.ndarray
    xs: np.ndarray
    ys: np.ndarray


def floor_coverage(
    cameras: Sequence[CameraCalibration],
    bounds: tuple[float, float, float, float],
    cell: float = 0.25,
    max_distance: float = 40.0,
    dilation: int = 0,
) -> FloorCoverage:
    """Which floor cells each camera sees. ``bounds`` = (x_min, y_min, x_max, y_max)."""
    xs = np.arange(bounds[0] + cell / 2, bounds[2], cell)
    ys = np.arange(bounds[1] + cell / 2, bounds[3], cell)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack([grid_x, grid_y, np.zeros_like(grid_x)], axis=-1)
    masks = []
    for camera in cameras:
        uv, depth = camera.project(points)
        inside = (
            (depth > 0.1)
            & (uv[..., 0] >= 0)
            & (uv[..., 0] <= camera.width - 1)
            & (uv[..., 1] >= 0)
            & (uv[..., 1] <= camera.height - 1)
        )
        near = np.linalg.norm(points[..., :2] - camera.center[:2], axis=-1) <= max_distance
        mask = inside & near
        if dilation > 0:
            mask = ndimage.binary_dilation(mask, iterations=dilation)
        masks.append(mask)
    return FloorCoverage(tuple(c.name for c in cameras), np.stack(masks), xs, ys)


def create_camera_groups(
    coverage: FloorCoverage,
    n_groups: int,
    cameras_per_group: Sequence[int],
    min_overlap_threshold: float = 0.1,
    seed: int = 0,
) -> list[CameraGroup]:
    """Greedy overlapping groups: each grows from a seed camera by the best-overlapping one.

    Args:
        n_groups: number of groups.
        cameras_per_group: the sizes to draw from (one per group, cycled), e.g. [5, 8, 10].
        min_overlap_threshold: a camera joins only if the fraction of its coverage that the
            group already sees is at least this.
        seed: seeds the choice of the groups' first cameras (least-used cameras first).

    Returns:
        list[CameraGroup]: groups named ``bev-sensor-<k>``; a camera may be in several.
    """
    count = len(coverage.cameras)
    if n_groups < 1 or not cameras_per_group or min(cameras_per_group) < 1:
        raise ValueError('n_groups and every entry of cameras_per_group must be at least 1')
    rng = np.random.default_rng(seed)
    masks = coverage.masks.reshape(count, -1)
    areas = masks.sum(axis=1).clip(min=1)
    uses = np.zeros(count, dtype=int)
    groups = []
    for index in range(n_groups):
        size = min(int(cameras_per_group[index % len(cameras_per_group)]), count)
        least_used = np.flatnonzero(uses == uses.min())
        members = [int(rng.choice(least_used))]
        union = masks[members[0]].copy()
        while len(members) < size:
            shared = (masks & union).sum(axis=1) / areas
            shared[members] = -1
            best = int(np.argmax(shared))
            if shared[best] < min_overlap_threshold:
                break
            members.append(best)
            union |= masks[best]
        uses[members] += 1
        rows, cols = np.nonzero(union.reshape(coverage.masks.shape[1:]))
        if len(rows):
            origin = np.array([coverage.xs[cols].mean(), coverage.ys[rows].mean(), 0.0])
        else:
            origin = np.zeros(3)
        names = tuple(coverage.cameras[m] for m in sorted(members))
        groups.append(CameraGroup(f'bev-sensor-{index + 1}', names, origin))
    return groups


def draw_camera_groups(
    coverage: FloorCoverage, groups: Sequence[CameraGroup], cameras, path: str | Path
) -> None:
    """A top-down PNG: each group's floor coverage in its colour, cameras as dots."""
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    extent = (coverage.xs[0], coverage.xs[-1], coverage.ys[0], coverage.ys[-1])
    figure, axis = plt.subplots(figsize=(8, 8 * (extent[3] - extent[2]) / (extent[1] - extent[0])))
    colours = plt.get_cmap('tab10')
    index_of = {name: i for i, name in enumerate(coverage.cameras)}
    for k, group in enumerate(groups):
        union = np.any([coverage.masks[index_of[c]] for c in group.cameras], axis=0)
        layer = np.zeros((*union.shape, 4))
        layer[union] = (*colours(k % 10)[:3], 0.3)
        axis.imshow(layer, origin='lower', extent=extent)
        axis.plot(*group.origin[:2], marker='+', markersize=14, color=colours(k % 10))
        axis.plot([], [], color=colours(k % 10), lw=6, label=f'{group.name}: {len(group.cameras)}')
    for camera in cameras:
        axis.plot(*camera.center[:2], 'k^')
        axis.annotate(camera.name, camera.center[:2], fontsize=7)
    axis.set_xlabel('x (m)')
    axis.set_ylabel('y (m)')
    axis.legend(loc='upper right', fontsize=8)
    axis.set_title('camera groups: floor coverage')
    figure.savefig(path, dpi=100, bbox_inches='tight')
    plt.close(figure)
