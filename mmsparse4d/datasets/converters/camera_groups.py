"""Camera grouping ("BEV groups"): overlapping groups of cameras by floor coverage.

Big scenes are split into groups of cameras that watch overlapping parts of the floor; each
group is one training sub-scene, re-centred on its own origin. Coverage is computed on a
floor grid: a cell is seen by a camera when its centre (z = 0) projects inside the image in
front of the camera and lies within ``max_distance`` of it; masks are dilated by
``dilation`` cells before overlaps are measured.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mmengine.logging import print_log
from scipy import ndimage

from ...utils.input_error import InputError
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


def camera_footprint(
    cameras: Sequence[CameraCalibration],
    cell: float = 0.25,
    max_distance: float = 40.0,
    dilation: int = 0,
) -> FloorCoverage:
    """The floor the cameras see, on a grid that depends on the cameras alone (their
    centres +- ``max_distance``), so that conversion and inference agree without ground
    truth."""
    centres = np.array([c.center[:2] for c in cameras]).reshape(-1, 2)
    low, high = centres.min(axis=0) - max_distance, centres.max(axis=0) + max_distance
    bounds = (float(low[0]), float(low[1]), float(high[0]), float(high[1]))
    return floor_coverage(cameras, bounds, cell, max_distance, dilation)


@dataclass(frozen=True)
class FootprintOptions:
    """The floor a scene's origin is the centre of (``cameras_origin``).

    Cameras see the floor far beyond the site (nothing here knows its walls), so the
    footprint is the floor within ``max_distance`` of a camera that ``min_cameras`` of them
    see: where views overlap is where objects are placed in 3D. On the synthetic layouts
    (floors 24-36 x 16-26 m centred on 0, 4-8 cameras) this puts the origin within about
    2.6 m of the floor's centre; with 40 m and one camera it was off by up to 7 m.
    """

    cell: float = 0.25
    max_distance: float = 20.0
    min_cameras: int = 2


def footprint_cells(
    cameras: Sequence[CameraCalibration], options: FootprintOptions | None = None
) -> np.ndarray:
    """[M, 2] world x, y (metres) of the floor cells the cameras see together
    (``FootprintOptions``): those seen by ``min_cameras`` of them, or by any one where no
    cell is seen by enough of them; [0, 2] where they see no floor."""
    options = options or FootprintOptions()
    footprint = camera_footprint(cameras, options.cell, options.max_distance)
    counts = footprint.masks.sum(axis=0)
    seen = counts >= min(options.min_cameras, len(cameras))
    if not seen.any():
        seen = counts > 0
    rows, cols = np.nonzero(seen)
    return np.stack([footprint.xs[cols], footprint.ys[rows]], axis=1)


def cameras_origin(
    cameras: Sequence[CameraCalibration], options: FootprintOptions | None = None
) -> np.ndarray:
    """The model frame's origin for these cameras: [3] world metres, z = 0, the centre of
    their floor footprint (``footprint_cells``; their own centre where they see no floor).
    ``tools/create_data.py`` re-centres every scene and camera group on it, and
    ``tools/infer.py`` and the trackers use it by default, so a site whose floor is far
    from the world origin still lies where the anchors are."""
    cells = footprint_cells(cameras, options)
    if not len(cells):
        cells = np.array([c.center[:2] for c in cameras])
    return np.array([*cells.mean(axis=0), 0.0])


def create_camera_groups(
    coverage: FloorCoverage,
    calibrations: Sequence[CameraCalibration],
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
        calibrations: the cameras of ``coverage``, in its order; each group's origin is
            ``cameras_origin`` of its cameras, as ``tools/infer.py --cameras`` finds it.
        seed: seeds the choice of the groups' first cameras (least-used cameras first).

    Returns:
        list[CameraGroup]: groups named ``bev-sensor-<k>``; a camera may be in several. A
        size above the number of cameras is clamped to it, and a group with the same
        cameras as an earlier one is left out (it would repeat that group's pickle); both
        are logged.
    """
    count = len(coverage.cameras)
    if n_groups < 1 or not cameras_per_group or min(cameras_per_group) < 1:
        raise InputError(
            f'--groups {n_groups} --cameras-per-group {" ".join(map(str, cameras_per_group))}: '
            'the number of groups and every group size must be at least 1'
        )
    if max(cameras_per_group) > count:
        print_log(
            f'camera groups: sizes {list(cameras_per_group)} asked for, the scene has '
            f'{count} cameras: larger groups take all {count}',
            logger='current',
            level=logging.WARNING,
        )
    rng = np.random.default_rng(seed)
    masks = coverage.masks.reshape(count, -1)
    areas = masks.sum(axis=1).clip(min=1)
    uses = np.zeros(count, dtype=int)
    memberships = []
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
        if sorted(members) not in memberships:
            memberships.append(sorted(members))
    if len(memberships) < n_groups:
        print_log(
            f'camera groups: {n_groups} asked for, {len(memberships)} have different cameras '
            f'(the scene has {count}): writing {len(memberships)}',
            logger='current',
            level=logging.WARNING,
        )
    groups = []
    for index, members in enumerate(memberships):
        names = tuple(coverage.cameras[m] for m in members)
        origin = cameras_origin([calibrations[m] for m in members])
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
