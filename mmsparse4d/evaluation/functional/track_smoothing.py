"""Offline smoothing of finished tracks: each box from its track's neighbouring frames.

A tracker reports every frame's box from that frame's evidence, so a standing object's
centre and size jitter by centimetres from frame to frame, and HOTA's 3D IoU pays for each
centimetre. Once the whole scene is tracked (the challenge's submissions are written after
the last frame) a box can borrow from its track's past and future frames:

- **Centres** (x, y, z): a local linear fit over the track's rows within ``centre_window``
  frames on either side, evaluated at the row's frame. A straight line through the window
  follows an object moving at constant velocity without lag, so only the noise is averaged
  out; on a turn the fit cuts the corner by about ``a * w**2 / 6`` (``a`` the centripetal
  acceleration, ``w`` the half window in seconds): 2 mm for a forklift turning at 1 m/s on
  a 3 m radius with a 10-frame half window at 30 FPS.
- **Sizes** (width, length, height): the median over the track's rows within
  ``size_window`` frames on either side (``None``: the whole track), since the objects are
  rigid. The median, not the mean, so that a few frames in which the box was misjudged
  (a partly seen object) do not drag the rest.
- **Yaw**: the circular mean over the track's rows within ``yaw_window`` frames on either
  side, of the doubled angle (a box and the box turned by pi are the same box, for the
  synthetic objects' look and for the 3D IoU alike), taken at the representative nearest the
  row's own yaw; 0 keeps it. A track whose yaw came from its motion (``MotionHeading``)
  has a smooth one already; the network's own yaw of a standing object jitters by degrees.
- **Heights** (``floor_height``, world z of the floor in metres; ``None`` keeps them): each
  centre's z becomes ``floor_height`` + height / 2, with the height the sizes above give.
  Every object of a warehouse stands on the floor, and the ground truth of the synthetic
  scenes puts its centre at half its height over z = 0 (Isaac Sim's floor; on the real AI
  City scenes that is not verified: check ``tools/aicity_eval.py errors``' heights first). A
  free z errs by centimetres, and the thin robots (0.36-0.45 m tall) lose IoU to every one.
- Ids, classes and frames are kept as they are.

Windows count frames, not rows: a track with gaps uses the rows that exist within the
window (its fit is evaluated at the row's own frame, so a gap shifts nothing).

Rows are the submission's 11 fields (``writers.aicity_submission``); a track is a
(scene, class, object id) triple, as the format numbers objects per scene and class.
Numpy only, so that ``tools/aicity_eval.py`` stays fast to start.
"""

import argparse

import numpy as np

from ..writers.aicity_submission import (
    CENTRE,
    CLASS,
    FRAME,
    HEIGHT,
    NUM_FIELDS,
    OBJECT,
    SCENE,
    SIZE,
    YAW,
    Z,
)


def _window_bounds(frames: np.ndarray, half_window: int) -> tuple[np.ndarray, np.ndarray]:
    """[n] start (inclusive) and end (exclusive) index of each row's window in sorted [n]
    frames."""
    start = np.searchsorted(frames, frames - half_window, side='left')
    end = np.searchsorted(frames, frames + half_window, side='right')
    return start, end


def local_linear_fit(frames: np.ndarray, values: np.ndarray, half_window: int) -> np.ndarray:
    """The least-squares line through the values within ``half_window`` frames of each row,
    evaluated at the row's frame.

    Args:
        frames: [n] strictly increasing frame numbers of one track.
        values: [n, k] float values at those frames.
        half_window: frames on either side (>= 0; 0 returns the values).

    Returns:
        np.ndarray: [n, k] fitted values (float64). A window that holds one row returns it.
    """
    values = np.asarray(values, dtype=np.float64)
    if half_window == 0 or len(frames) < 2:
        return values.copy()
    # Centred times keep the sums of squares small (frames reach 10^4 in real scenes).
    t = np.asarray(frames, dtype=np.float64)
    t = t - t.mean()
    start, end = _window_bounds(np.asarray(frames), half_window)

    def window_sums(column: np.ndarray) -> np.ndarray:
        cumulative = np.concatenate([np.zeros((1, *column.shape[1:])), np.cumsum(column, axis=0)])
        return cumulative[end] - cumulative[start]

    count = (end - start).astype(np.float64)
    sum_t, sum_tt = window_sums(t), window_sums(t * t)
    sum_y, sum_ty = window_sums(values), window_sums(t[:, None] * values)
    # Moments about the row's own time t0: the fitted line's value at t0 is the intercept.
    t0 = t
    s1 = sum_t - count * t0
    s2 = sum_tt - 2 * t0 * sum_t + count * t0 * t0
    sy = sum_y
    sty = sum_ty - t0[:, None] * sum_y
    determinant = count * s2 - s1 * s1
    # One row, or all rows at one frame: no slope to fit, the window's mean.
    flat = determinant <= 1e-9 * np.maximum(count * s2, 1.0)
    safe = np.where(flat, 1.0, determinant)
    fitted = (s2[:, None] * sy - s1[:, None] * sty) / safe[:, None]
    fitted[flat] = sy[flat] / count[flat, None]
    return fitted


def windowed_median(frames: np.ndarray, values: np.ndarray, half_window: int | None) -> np.ndarray:
    """[n, k] median of the [n, k] values within ``half_window`` frames of each row (sorted
    [n] frames); ``None``: the whole track's median for every row."""
    values = np.asarray(values, dtype=np.float64)
    if half_window is None:
        return np.broadcast_to(np.median(values, axis=0), values.shape).copy()
    start, end = _window_bounds(np.asarray(frames), half_window)
    return np.stack([np.median(values[a:b], axis=0) for a, b in zip(start, end, strict=True)])


def windowed_axial_mean(frames: np.ndarray, angles: np.ndarray, half_window: int) -> np.ndarray:
    """[n] the circular mean of the doubled [n] angles (radians) within ``half_window``
    frames of each row (sorted [n] frames), halved and taken at the representative (modulo
    pi) nearest each row's own angle; a window whose doubled angles cancel keeps the row's."""
    angles = np.asarray(angles, dtype=np.float64)
    if half_window == 0 or len(angles) < 2:
        return angles.copy()
    start, end = _window_bounds(np.asarray(frames), half_window)
    cumulative_cos = np.concatenate([[0.0], np.cumsum(np.cos(2 * angles))])
    cumulative_sin = np.concatenate([[0.0], np.cumsum(np.sin(2 * angles))])
    cos_sum = cumulative_cos[end] - cumulative_cos[start]
    sin_sum = cumulative_sin[end] - cumulative_sin[start]
    mean = np.arctan2(sin_sum, cos_sum) / 2
    # Cumulative sums leave rounding of about 1e-16 per row where the window's vectors cancel.
    undefined = np.hypot(cos_sum, sin_sum) < 1e-9 * (end - start)
    turn = (mean - angles + np.pi / 2) % np.pi - np.pi / 2
    return np.where(undefined, angles, angles + turn)


def smooth_tracks(
    rows: np.ndarray,
    centre_window: int = 0,
    constant_size: bool = False,
    size_window: int | None = None,
    yaw_window: int = 0,
    floor_height: float | None = None,
) -> np.ndarray:
    """Smooth every track's centres, sizes and yaws and set the boxes on the floor (see the
    module docstring).

    Args:
        rows: [R, 11] submission rows; a (scene, class, object id, frame) appears once at
            most.
        centre_window: frames on either side of the local linear fit of the centres (0: the
            centres are kept).
        constant_size: take each row's size from the median of its track's.
        size_window: frames on either side of that median (``None``: the whole track).
        yaw_window: frames on either side of the axial mean of the yaws (0: kept).
        floor_height: world z of the floor (metres): every centre's z becomes it plus half
            the box's height, after the sizes (``None``: z as the centres give it).

    Returns:
        np.ndarray: [R, 11] float64 rows in the input's order (a copy).
    """
    windows = dict(centre_window=centre_window, size_window=size_window, yaw_window=yaw_window)
    if any(value is not None and value < 0 for value in windows.values()):
        described = ', '.join(f'{name}={value}' for name, value in windows.items())
        raise ValueError(f'windows are frames >= 0, got {described}')
    if floor_height is not None and not np.isfinite(floor_height):
        raise ValueError(f"floor_height is the floor's z in metres, got {floor_height}")
    rows = np.array(rows, dtype=np.float64).reshape(-1, NUM_FIELDS)
    if len(rows) == 0:
        return rows
    if centre_window == 0 and not constant_size and yaw_window == 0:
        return _on_the_floor(rows, floor_height)
    order = np.lexsort((rows[:, FRAME], rows[:, OBJECT], rows[:, CLASS], rows[:, SCENE]))
    ordered = rows[order]
    keys = ordered[:, [SCENE, CLASS, OBJECT]]
    boundaries = np.flatnonzero((keys[1:] != keys[:-1]).any(axis=1)) + 1
    for track in np.split(np.arange(len(ordered)), boundaries):
        frames = ordered[track, FRAME].astype(np.int64)
        twice = np.flatnonzero(np.diff(frames) == 0)
        if len(twice):
            scene, class_id, object_id = ordered[track[0], [SCENE, CLASS, OBJECT]].astype(np.int64)
            raise ValueError(
                f'scene {scene}, class {class_id}, object {object_id}: two rows in frame '
                f'{frames[twice[0]]}'
            )
        if centre_window:
            ordered[track, CENTRE] = local_linear_fit(frames, ordered[track, CENTRE], centre_window)
        if constant_size:
            ordered[track, SIZE] = windowed_median(frames, ordered[track, SIZE], size_window)
        if yaw_window:
            ordered[track, YAW] = windowed_axial_mean(frames, ordered[track, YAW], yaw_window)
    smoothed = np.empty_like(rows)
    smoothed[order] = ordered
    return _on_the_floor(smoothed, floor_height)


def _on_the_floor(rows: np.ndarray, floor_height: float | None) -> np.ndarray:
    """[R, 11] rows with each centre's z at ``floor_height`` + height / 2 (in place)."""
    if floor_height is not None:
        rows[:, Z] = floor_height + rows[:, HEIGHT] / 2
    return rows


def check_track_smoothing(settings: dict) -> dict:
    """``settings`` as ``smooth_tracks`` keywords (a config's ``track_smoothing``), checked
    before any work: a copy, or ``ValueError`` naming the unknown key or the bad window."""
    try:
        smooth_tracks(np.zeros((0, NUM_FIELDS)), **settings)
    except TypeError as error:
        raise ValueError(str(error)) from None
    return dict(settings)


def size_settings(size_window: int | str) -> dict:
    """``smooth_tracks``' size keywords for a command line's size window
    (``size_window_argument``): ``none`` keeps the sizes, ``all`` takes the track's median."""
    if size_window == 'none':
        return {'constant_size': False}
    return {'constant_size': True, 'size_window': None if size_window == 'all' else size_window}


def size_window_argument(text: str) -> int | str:
    """A command line's size window: ``all`` (the track's median), ``none`` (sizes kept) or
    frames on either side (an int >= 0); an ``argparse`` type."""
    if text in ('all', 'none'):
        return text
    try:
        frames = int(text)
    except ValueError:
        frames = -1
    if frames < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not all, none or frames >= 0')
    return frames
