"""Re-score tracked scenes with stronger duplicate suppression, track stitching, a shorter
heading window of the yaw from motion or offline track smoothing, from their saved tracks:
which settings are worth a tracking run, chosen on the validation scenes.

    python tools/analysis_tools/sweep_postprocessing.py WORK_DIR
        [--duplicate-radius 0.75 1.0 1.5] [--stitching 1.5:30 2:60 2:150]
        [--heading-window 8 10 12 [--motion-heading 20:0.3]]
        [--centre-window 5 10 20] [--size-window all 30] [--yaw-window 10 20]
        [--floor-height 0.0] [--min-score 0.1]

WORK_DIR is an ``evaluate_synthetic.py`` work dir (``raw/`` scenes, ``out/`` tracks). Both
steps run as the decoder runs them (``SparseBox3DDecoder.keep_oldest_tracks``,
``TrackStitcher``) on top of the boxes the tracking run reported, so they compose with the
settings the run used: a radius or an age below the run's own changes nothing. The classes
go through ``one_class_per_track`` as the submission writer does. Prints a table of mean
HOTA, DetA, AssA, HOTA every class (a class left without predictions in a scene scored 0,
not skipped as the protocol does) and track ids over the scenes, one row per combination
(the first row is the run as it was).

``--heading-window K`` re-applies ``MotionHeading(window, min_distance, heading_window=K)``
with the run's own ``--motion-heading WINDOW:MIN_DISTANCE`` (the shipped configs': 20:0.3):
the same test picks the moving tracks, whose yaw the run already took from motion, and their
direction comes from the last K frames (rows of their own, without the other two steps).
The saved tracks hold the boxes reported above the run's score threshold; the run's
MotionHeading also saw the boxes between the decoder's threshold and it, so a track that
dipped below the reported threshold is fitted on fewer centres here.

``--min-score S`` drops the saved boxes scoring below S first, in every row: the tracks of
a run whose stitching continued tracks down to a ``continue_score``, scored as if that had
been S (nearly: a track continued by a dropped box stayed alive for the stitching).

``--centre-window K`` and ``--size-window W`` smooth the finished tracks as ``infer.py``
does for a config with ``track_smoothing`` (``evaluation.functional.track_smoothing``):
centres from a local linear fit over K frames on either side, sizes from the median over W
frames on either side (``all``: the whole track); ``--yaw-window Y`` the yaws from their
axial mean over Y frames on either side: one row per combination of the three, each
window also left out (rows of their own, without the first three steps). ``--floor-height
H`` stands every smoothed row's boxes on a floor at z = H (and adds a row of that alone).
The first row, as tracked, scores the tracker's boxes: the submission of a run whose config
smooths is what the row of its own windows scores.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from mmsparse4d.datasets.aicity import RawScene
from mmsparse4d.evaluation.functional.aicity_hota import aicity_hota, every_class_hota
from mmsparse4d.evaluation.functional.track_smoothing import (
    size_settings,
    size_window_argument,
    smooth_tracks,
)
from mmsparse4d.evaluation.scene_scores import SCENE_ID
from mmsparse4d.evaluation.writers.aicity_submission import (
    FRAME,
    OBJECT,
    ground_truth_rows,
    one_class_per_track,
)
from mmsparse4d.models.task_modules.motion_heading import MotionHeading
from mmsparse4d.models.task_modules.sparse_box3d_decoder import SparseBox3DDecoder
from mmsparse4d.models.task_modules.track_stitcher import TrackStitcher
from mmsparse4d.utils.input_error import InputError, run_tool


def stitching_setting(text: str) -> tuple[float, int]:
    """``RADIUS:MAX_AGE`` (metres, frames)."""
    try:
        radius, age = text.split(':')
        return float(radius), int(age)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not RADIUS:MAX_AGE, e.g. 2:60') from None


def motion_setting(text: str) -> tuple[int, float]:
    """``WINDOW:MIN_DISTANCE`` (frames, metres)."""
    try:
        window, distance = text.split(':')
        return int(window), float(distance)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not WINDOW:MIN_DISTANCE, e.g. 20:0.3'
        ) from None


def read_tracks(path: Path) -> list[tuple[np.ndarray, ...]]:
    """Per frame: boxes [M, 10], scores [M], labels [M], track ids [M] of a ``*_tracks.npz``."""
    with np.load(path) as tracks:
        keys = ('bboxes_3d', 'scores_3d', 'labels_3d', 'track_ids')
        return [tuple(tracks[f'{f}/{k}'] for k in keys) for f in range(int(tracks['frames']))]


def rescore(
    frames, gt_rows, duplicate_radius, stitching, heading=None, smoothing=None
) -> tuple[dict, int]:
    """HOTA of the frames' boxes after the extra suppression and stitching, with the yaw of
    moving tracks from ``heading`` (a ``MotionHeading``), or the tracks smoothed by
    ``smoothing`` (centre window, command-line size window, yaw window, floor height); ids
    counted."""
    decoder = SparseBox3DDecoder(duplicate_radius=duplicate_radius) if duplicate_radius else None
    stitcher = TrackStitcher(*stitching, min_score=0.0) if stitching else None
    if heading is not None:
        heading.reset()
    rows, scores = [], []
    for frame, (boxes, frame_scores, labels, ids) in enumerate(frames):
        if decoder is not None and len(boxes):
            keep = decoder.keep_oldest_tracks(
                torch.as_tensor(boxes), torch.as_tensor(frame_scores), torch.as_tensor(ids)
            ).numpy()
            boxes, frame_scores, labels, ids = (
                boxes[keep],
                frame_scores[keep],
                labels[keep],
                ids[keep],
            )
        if stitcher is not None and len(boxes):
            ids = (
                stitcher(
                    0,
                    torch.as_tensor(boxes),
                    torch.as_tensor(frame_scores),
                    torch.as_tensor(ids),
                    frame == 0,
                ).numpy()
                + 1
            )  # the stitcher numbers from 0; submission ids start at 1
        if heading is not None and len(boxes):
            boxes = heading(0, torch.as_tensor(boxes), torch.as_tensor(ids), frame == 0).numpy()
        rows += [
            [SCENE_ID, c, i, frame, *b[:7]] for b, c, i in zip(boxes, labels, ids, strict=True)
        ]
        scores += list(frame_scores)
    rows, _ = one_class_per_track(np.asarray(rows, dtype=np.float64), np.asarray(scores))
    if smoothing is not None:
        centre_window, size_window, yaw_window, floor_height = smoothing
        rows = smooth_tracks(
            rows,
            centre_window,
            **size_settings(size_window),
            yaw_window=yaw_window,
            floor_height=floor_height,
        )
    scores = aicity_hota(gt_rows, rows, num_frames=len(frames))
    final = dict(scores['final'], HOTA_every_class=every_class_hota(scores, gt_rows))
    return final, len(np.unique(rows[:, OBJECT]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', type=Path)
    parser.add_argument('--duplicate-radius', type=float, nargs='+', default=[0.75, 1.0, 1.5])
    parser.add_argument(
        '--stitching', type=stitching_setting, nargs='+', default=[(1.5, 30), (2.0, 60), (2.0, 150)]
    )
    parser.add_argument(
        '--heading-window',
        type=int,
        nargs='+',
        default=[],
        help='frames whose centres give a moving track its yaw (MotionHeading.heading_window)',
    )
    parser.add_argument(
        '--motion-heading',
        type=motion_setting,
        default=(20, 0.3),
        help="the run's MotionHeading WINDOW:MIN_DISTANCE (default 20:0.3)",
    )
    parser.add_argument(
        '--centre-window',
        type=int,
        nargs='+',
        default=[],
        help="frames on either side of the local linear fit of a track's centres",
    )
    parser.add_argument(
        '--size-window',
        type=size_window_argument,
        nargs='+',
        default=[],
        help="frames on either side of the median of a track's sizes (all: the whole track; "
        'none: sizes kept)',
    )
    parser.add_argument(
        '--yaw-window',
        type=int,
        nargs='+',
        default=[],
        help="frames on either side of the axial mean of a track's yaws",
    )
    parser.add_argument(
        '--floor-height',
        type=float,
        default=None,
        help="the floor's z (metres) every smoothed row's boxes stand on",
    )
    parser.add_argument(
        '--min-score',
        type=float,
        default=None,
        help="drop the saved boxes scoring below it before every row (a run's tracks "
        'continued down to a continue_score, re-scored as if it had been this one)',
    )
    args = parser.parse_args(argv)
    if any(k < 1 for k in args.centre_window + args.yaw_window):
        raise InputError('--centre-window, --yaw-window: frames on either side must be >= 1')
    if args.floor_height is not None and not np.isfinite(args.floor_height):
        raise InputError(f'--floor-height must be a height in metres, got {args.floor_height}')
    stitchings = args.stitching
    if any(r <= 0 for r in args.duplicate_radius) or any(r <= 0 or a < 1 for r, a in stitchings):
        raise InputError('--duplicate-radius and the stitching radius must be > 0, ages >= 1')
    window, min_distance = args.motion_heading
    try:
        headings = {
            k: MotionHeading(window, min_distance, heading_window=k) for k in args.heading_window
        }
    except ValueError as error:
        raise InputError(f'--heading-window / --motion-heading: {error}') from None
    tracks = sorted((args.work_dir / 'out').glob('*_tracks.npz'))
    if not tracks:
        raise InputError(
            'no out/*_tracks.npz: not an evaluate_synthetic.py work dir', path=args.work_dir
        )
    settings = [
        (r, s, None, None) for r in [None, *args.duplicate_radius] for s in [None, *stitchings]
    ]
    settings += [(None, None, k, None) for k in headings]
    floor = args.floor_height
    combinations = [
        (k, w, y, floor)
        for k in [0, *args.centre_window]
        for w in ['none', *args.size_window]
        for y in [0, *args.yaw_window]
    ]
    smoothings = list(dict.fromkeys(combinations))
    if floor is None:
        smoothings = smoothings[1:]  # without the first, as tracked
    settings += [(None, None, None, smoothing) for smoothing in smoothings]
    results = {setting: [] for setting in settings}
    for path in tracks:
        name = path.name[: -len('_tracks.npz')]
        scene_dir = args.work_dir / 'raw' / name
        if not (scene_dir / 'ground_truth.json').is_file():
            raise InputError(f'no ground truth for {path.name}', path=scene_dir)
        scene = RawScene(scene_dir)
        try:
            gt_rows = ground_truth_rows(scene.ground_truth, SCENE_ID)
        finally:
            scene.close()
        frames = read_tracks(path)
        if args.min_score is not None:
            frames = [tuple(a[f[1] >= args.min_score] for a in f) for f in frames]
        gt_rows = gt_rows[gt_rows[:, FRAME] < len(frames)]
        for radius, stitching, k, smoothing in settings:
            heading = headings.get(k)
            final, ids = rescore(frames, gt_rows, radius, stitching, heading, smoothing)
            results[(radius, stitching, k, smoothing)].append(
                (final['HOTA'], final['DetA'], final['AssA'], final['HOTA_every_class'], ids)
            )
        print(f'{name}: HOTA {results[(None, None, None, None)][-1][0]:.2f} as tracked', flush=True)
    print(f'\nmean over {len(tracks)} scenes\n')
    print(
        '| duplicate radius | stitching (m : frames) | heading window (frames) '
        '| centre window (frames) | size window (frames) | yaw window (frames) '
        '| floor (m) | HOTA | DetA | AssA | HOTA every class | track ids |'
    )
    print('|---|---|---|---|---|---|---|---:|---:|---:|---:|---:|')
    for (radius, stitching, k, smoothing), values in results.items():
        mean = np.mean(values, axis=0)
        radius_text = 'as tracked' if radius is None else f'{radius:g}'
        stitch_text = 'as tracked' if stitching is None else f'{stitching[0]:g} : {stitching[1]}'
        heading_text = 'as tracked' if k is None else f'{k} of {window}'
        centre_text = size_text = yaw_text = floor_text = 'as tracked'
        if smoothing is not None:
            centre_window, size_window, yaw_window, floor_height = smoothing
            centre_text = f'{centre_window}' if centre_window else 'as tracked'
            if size_window != 'none':
                size_text = f'{size_window}'
            yaw_text = f'{yaw_window}' if yaw_window else 'as tracked'
            floor_text = 'as tracked' if floor_height is None else f'{floor_height:g}'
        scores = ' | '.join(f'{value:.2f}' for value in mean[:4])
        print(
            f'| {radius_text} | {stitch_text} | {heading_text} | {centre_text} | {size_text} '
            f'| {yaw_text} | {floor_text} | {scores} | {mean[4]:.1f} |'
        )


if __name__ == '__main__':
    run_tool('sweep_postprocessing', main)
