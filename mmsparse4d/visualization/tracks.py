"""Drawing tracked 3D boxes: each camera's image with the projected boxes, and a bird's-eye
view with trajectories; colours follow track ids."""

from collections.abc import Sequence

import cv2
import numpy as np

from ..datasets.aicity import CameraCalibration
from ..datasets.aicity.ground_truth import box_corners

# Corner index = 4 x (x > 0) + 2 x (y > 0) + (z > 0), as box_corners orders them.
EDGES = (
    (0, 1),
    (2, 3),
    (4, 5),
    (6, 7),
    (0, 2),
    (1, 3),
    (4, 6),
    (5, 7),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
)


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct RGB colour per track id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    pixel = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
    return tuple(int(v) for v in pixel)


def draw_camera(
    image: np.ndarray, camera: CameraCalibration, boxes: np.ndarray, track_ids: Sequence[int]
) -> np.ndarray:
    """RGB image [H, W, 3] with the 12 edges of each box [M, >= 7] (world metres) that lie in
    front of the camera, labelled with the track id."""
    out = image.copy()
    for box, track in zip(boxes, track_ids, strict=True):
        corners = box_corners(box[:3], box[3:6], float(box[6]))
        uv, depth = camera.project(corners)
        if (depth <= 0.1).any():
            continue
        colour = track_colour(int(track))
        points = np.round(uv).astype(int)
        for a, b in EDGES:
            cv2.line(out, tuple(points[a]), tuple(points[b]), colour, 1, cv2.LINE_AA)
        top = points[np.argmin(points[:, 1])]
        cv2.putText(
            out,
            str(int(track)),
            (int(top[0]), int(top[1]) - 3),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            colour,
            1,
            cv2.LINE_AA,
        )
    return out


def draw_bev(
    boxes: np.ndarray,
    track_ids: Sequence[int],
    history: dict[int, list],
    cameras: Sequence[CameraCalibration],
    bounds: tuple[float, float, float, float],
    size: int = 540,
    gt_boxes: np.ndarray | None = None,
) -> np.ndarray:
    """Bird's-eye view [size, size, 3] RGB over ``bounds`` (x_min, y_min, x_max, y_max):
    ground truth footprints in grey, tracked footprints and their trajectories (``history``:
    track id -> list of (x, y)) in track colours, cameras as white dots."""
    canvas = np.full((size, size, 3), 24, np.uint8)
    x_min, y_min, x_max, y_max = bounds
    scale = (size - 20) / max(x_max - x_min, y_max - y_min)

    def to_pixel(xy):
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        u = 10 + (xy[:, 0] - x_min) * scale
        v = size - 10 - (xy[:, 1] - y_min) * scale
        return np.round(np.stack([u, v], -1)).astype(np.int32)

    for metre in range(int(np.floor(x_min)), int(np.ceil(x_max)) + 1, 5):
        u = to_pixel([[metre, y_min]])[0, 0]
        cv2.line(canvas, (u, 0), (u, size), (50, 50, 50), 1)
    for metre in range(int(np.floor(y_min)), int(np.ceil(y_max)) + 1, 5):
        v = to_pixel([[x_min, metre]])[0, 1]
        cv2.line(canvas, (0, v), (size, v), (50, 50, 50), 1)
    for box in [] if gt_boxes is None else gt_boxes:
        footprint = box_corners(box[:3], box[3:6], float(box[6]))[[0, 2, 6, 4], :2]
        cv2.polylines(canvas, [to_pixel(footprint)], True, (120, 120, 120), 1, cv2.LINE_AA)
    for track, points in history.items():
        if len(points) > 1:
            cv2.polylines(canvas, [to_pixel(points)], False, track_colour(track), 1, cv2.LINE_AA)
    for box, track in zip(boxes, track_ids, strict=True):
        footprint = box_corners(box[:3], box[3:6], float(box[6]))[[0, 2, 6, 4], :2]
        cv2.polylines(canvas, [to_pixel(footprint)], True, track_colour(int(track)), 2, cv2.LINE_AA)
    for camera in cameras:
        cv2.circle(canvas, tuple(to_pixel(camera.center[:2])[0]), 4, (255, 255, 255), -1)
    return canvas


def compose(camera_images: Sequence[np.ndarray], bev: np.ndarray, width: int = 480) -> np.ndarray:
    """Cameras in a two-column grid (each resized to ``width``), the BEV beside them."""
    tiles = []
    for image in camera_images:
        height = int(round(image.shape[0] * width / image.shape[1]))
        tiles.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    if len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + 2], axis=1) for i in range(0, len(tiles), 2)]
    grid = np.concatenate(rows, axis=0)
    side = cv2.resize(bev, (grid.shape[0], grid.shape[0]))
    return np.concatenate([grid, side], axis=1)
