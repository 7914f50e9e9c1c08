"""Turn reported boxes to face the way their track moves (yaw from motion).

The network's yaw is its weakest output on small, box-like objects (docs/evaluation.md has
the measured errors, and the score with and without this step). The objects of warehouse scenes
(people, robots, forklifts) face the way they travel, so a track that has clearly moved
tells its heading better than the image does. This runs after the track ids
are final, on the reported boxes only: tracking-by-detection post-processing, explicitly
configured (not in upstream Sparse4D or TAO), off unless a config asks for it.
"""

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from ...registry import TASK_UTILS
from ...structures import YAW


@dataclass
class _SampleTracks:
    frame: int = 0
    # track -> (frame, x, y) of its last reported boxes, oldest first
    history: dict[int, deque] = field(default_factory=dict)


@TASK_UTILS.register_module()
class MotionHeading:
    """Per sample and frame: the yaw of a tracked box becomes the direction of its track's
    motion where the track has moved far enough to tell.

    For every box with a track id (>= 0), the bird's-eye-view centres the track reported in
    the last ``window`` frames (this one included) are fitted by a straight line in time
    (least squares, x and y separately). When the track has at least ``min_points`` centres
    and the fitted line covers at least ``min_distance`` metres between its first and last
    frame, the box's yaw is set to the line's direction, atan2(dy, dx): the direction of
    travel (for IoU-based metrics, yaw and yaw + pi are the same box). Other boxes keep the
    network's yaw. Velocities and everything else are left as they are.

    With ``heading_window`` the direction comes from a line fitted to the centres of the
    last ``heading_window`` frames only (the test above still decides whether the track
    moves): a line over the whole window points where the track went on average over it and
    lags behind a turn, a shorter one follows the turn at the price of more noise.

    Frames are counted per sample, one per call; ``restart`` (the instance bank's "no valid
    cache": a new scene or a time gap) forgets a sample's tracks and ``reset`` forgets all.

    Args:
        window: frames of history per track (20: 0.67 s at 30 FPS).
        min_distance: metres the fitted motion must cover within the window; below it the
            track counts as standing still (its centres' noise would give a random heading).
        min_points: fewest reported centres a fit needs (>= 2).
        heading_window: frames whose centres give the direction, min_points <=
            heading_window <= window; None: the whole window. Where the track has fewer than
            min_points centres in them, the whole window's line gives it.
    """

    def __init__(
        self,
        window: int = 20,
        min_distance: float = 0.3,
        min_points: int = 3,
        heading_window: int | None = None,
    ):
        heading_window = window if heading_window is None else heading_window
        if (
            window < 2
            or min_points < 2
            or min_points > window
            or min_distance <= 0
            or not min_points <= heading_window <= window
        ):
            raise ValueError(
                'MotionHeading: need 2 <= min_points <= heading_window <= window and '
                f'min_distance > 0, got window={window}, min_points={min_points}, '
                f'heading_window={heading_window}, min_distance={min_distance}'
            )
        self.window, self.min_distance, self.min_points = window, min_distance, min_points
        self.heading_window = heading_window
        self.reset()

    def reset(self) -> None:
        self.samples: dict[int, _SampleTracks] = {}

    def __call__(
        self, sample: int, boxes: torch.Tensor, track_ids: torch.Tensor, restart: bool
    ) -> torch.Tensor:
        """Decoded boxes [M, 10] of one sample with their track ids [M] (-1: none) ->
        the boxes with the yaw of moving tracks replaced (a new tensor; same device)."""
        if len(boxes) != len(track_ids):
            raise ValueError(f'MotionHeading: {len(boxes)} boxes but {len(track_ids)} track ids')
        if restart or sample not in self.samples:
            self.samples[sample] = _SampleTracks()
        state = self.samples[sample]
        state.frame += 1
        centres = boxes[:, :2].detach().float().cpu().numpy()
        tracks = track_ids.detach().cpu().numpy().astype(np.int64)
        yaws = boxes[:, YAW].detach().float().cpu().numpy().copy()
        first_kept = state.frame - self.window + 1
        for index, track in enumerate(tracks):
            if track < 0:
                continue
            history = state.history.setdefault(int(track), deque())
            history.append((state.frame, *centres[index]))
            while history[0][0] < first_kept:
                history.popleft()
            heading = self.heading(np.asarray(history))
            if heading is not None:
                yaws[index] = heading
        for track in [t for t, h in state.history.items() if h[-1][0] < first_kept]:
            del state.history[track]
        out = boxes.clone()
        out[:, YAW] = torch.as_tensor(yaws, dtype=boxes.dtype, device=boxes.device)
        return out

    def heading(self, history: np.ndarray) -> float | None:
        """Direction (radians) of the track in ``history`` [N, 3] (frame, x, y), oldest
        first, or None where it has too few points or its line covers less than
        ``min_distance``."""
        if len(history) < self.min_points:
            return None
        slope = self._slope(history)
        span = float(history[-1, 0] - history[0, 0])
        if slope is None or float(np.hypot(*slope)) * span < self.min_distance:
            return None
        if self.heading_window < self.window:
            recent = history[history[:, 0] > history[-1, 0] - self.heading_window]
            recent_slope = self._slope(recent) if len(recent) >= self.min_points else None
            if recent_slope is not None and np.any(recent_slope != 0):
                slope = recent_slope
        return float(np.arctan2(slope[1], slope[0]))

    @staticmethod
    def _slope(history: np.ndarray) -> np.ndarray | None:
        """Least-squares slope [2] per axis (metres per frame) of the centres in ``history``
        [N, 3] against their frames; None when they share one frame."""
        frames = history[:, 0] - history[:, 0].mean()
        spread = float((frames**2).sum())
        if spread == 0.0:
            return None
        return (frames[:, None] * (history[:, 1:] - history[:, 1:].mean(axis=0))).sum(0) / spread
