"""Where a scene sits in the model's frame: its origin, and whether the anchors reach it.

A model predicts near its anchors, which k-means placed over the training boxes in the
re-centred frame of ``tools/create_data.py``. The trackers therefore re-centre each scene
on the origin that the converter gives the same cameras (``cameras_origin``: the centre of
their floor footprint) unless the caller names one, and warn when the floor the cameras
see lies mostly outside the range of the checkpoint's anchors.
"""

import logging
from collections.abc import Sequence

import numpy as np
from mmengine.logging import print_log

from ..datasets.aicity.calibration import CameraCalibration
from ..datasets.converters.camera_groups import cameras_origin, footprint_cells
from ..utils.input_error import InputError

# Below this share of the cameras' floor footprint inside the anchors' range (grown by
# ANCHOR_MARGIN metres), most of what the cameras see is where the model never looks.
MIN_COVERED_SHARE = 0.5
ANCHOR_MARGIN = 2.0


def calibrations(
    intrinsics: np.ndarray,
    world_to_camera: np.ndarray,
    image_wh: Sequence[Sequence[int]],
    names: Sequence[str] | None = None,
) -> list[CameraCalibration]:
    """Cameras from per-camera K [N, 3, 3], world-to-camera [N, 4, 4] and sizes (W, H)."""
    names = list(names or [f'cam{index}' for index in range(len(intrinsics))])
    return [
        CameraCalibration(name, np.asarray(k), np.asarray(pose), int(wh[0]), int(wh[1]))
        for name, k, pose, wh in zip(names, intrinsics, world_to_camera, image_wh, strict=True)
    ]


def footprint_coverage(
    cameras: Sequence[CameraCalibration],
    origin: np.ndarray,
    anchors: tuple[float, float, float, float],
) -> tuple[float, tuple[float, float, float, float] | None]:
    """The share of the cameras' floor footprint (``footprint_cells``) within ``anchors``
    (x_min, y_min, x_max, y_max in the model frame, grown by ``ANCHOR_MARGIN``) once
    re-centred on ``origin``, and the footprint's own range in the model frame (None where
    no floor is seen)."""
    cells = footprint_cells(cameras)
    if not len(cells):
        return 1.0, None
    x = cells[:, 0] - origin[0]
    y = cells[:, 1] - origin[1]
    inside = (
        (x >= anchors[0] - ANCHOR_MARGIN)
        & (x <= anchors[2] + ANCHOR_MARGIN)
        & (y >= anchors[1] - ANCHOR_MARGIN)
        & (y <= anchors[3] + ANCHOR_MARGIN)
    )
    return float(inside.mean()), (float(x.min()), float(y.min()), float(x.max()), float(y.max()))


def _format_range(bounds: tuple[float, float, float, float]) -> str:
    return f'x {bounds[0]:.1f}..{bounds[2]:.1f} m, y {bounds[1]:.1f}..{bounds[3]:.1f} m'


class SceneOrigins:
    """The origin of each scene a tracker sees, found once when the scene starts.

    Args:
        owner: the name that starts every message (``Sparse4DTracker``, ...).
        anchors: the checkpoint's anchor range (``deploy.metadata.anchor_range``), or None
            where it is not known (then the footprint is not checked, which is logged).
    """

    def __init__(self, owner: str, anchors: tuple[float, float, float, float] | None):
        self.owner = owner
        self.anchors = anchors
        self._scene = None
        self._origin = None

    def __call__(self, scene: str, origin, cameras: Sequence[CameraCalibration]) -> np.ndarray:
        """[3] world metres: ``origin`` where given, else ``cameras_origin(cameras)``;
        logged (and the footprint checked against the anchors) at a scene's first frame."""
        given = origin is not None
        if given:
            origin = np.asarray(origin, dtype=np.float64).reshape(3)
            if not np.isfinite(origin).all():
                raise InputError(f'{self.owner}: origin {origin.tolist()} is not finite')
        if scene == self._scene and (not given or np.array_equal(origin, self._origin)):
            return self._origin
        if not given:
            origin = cameras_origin(cameras)
            print_log(
                f'{self.owner}: scene {scene!r}: origin ({origin[0]:.2f}, {origin[1]:.2f}, '
                f'{origin[2]:.2f}) m, the centre of the floor its {len(cameras)} cameras see '
                '(tools/create_data.py re-centres the same cameras on it)',
                logger='current',
            )
        self._scene, self._origin = scene, origin
        self._check_footprint(scene, origin, cameras)
        return origin

    def _check_footprint(self, scene, origin, cameras) -> None:
        if self.anchors is None:
            print_log(
                f'{self.owner}: the anchors are not known here; scene {scene!r} is not checked '
                'against their range',
                logger='current',
            )
            return
        share, seen = footprint_coverage(cameras, origin, self.anchors)
        if share < MIN_COVERED_SHARE:
            print_log(
                f'{self.owner}: scene {scene!r}: its cameras see the floor over '
                f'{_format_range(seen)} around the origin ({origin[0]:.2f}, {origin[1]:.2f}, '
                f"{origin[2]:.2f}), the checkpoint's anchors cover {_format_range(self.anchors)}"
                f': {100 * share:.0f}% of that floor is within their reach (objects elsewhere are '
                'not detected); check the origin, or split the site into camera groups '
                '(tools/create_data.py --groups) and run each group with its own cameras',
                logger='current',
                level=logging.WARNING,
            )
