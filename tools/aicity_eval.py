"""Score an AI City 2025 Track 1 submission, convert ground truth to that format, or break
down where its 3D-IoU HOTA is lost.

# ground_truth.json -> the 11-field text, so ground truth can be scored like predictions
python tools/aicity_eval.py convert-gt SCENE/ground_truth.json --scene-id 17 --out gt.txt
# HOTA as the challenge computes it (per scene and class, weighted over scenes)
python tools/aicity_eval.py score --ground-truth gt.txt --predictions track1.txt
    [--similarity iou3d|center] [--num-frames 9000] [--out summary.json]
# per class: missed / confused / false boxes, centre, size and yaw errors of the matched boxes,
# and the IoU each part would give if it were right (mmsparse4d.evaluation.functional.box_errors)
python tools/aicity_eval.py errors --ground-truth gt.txt --predictions track1.txt
    [--max-distance 2.0] [--out errors.json]
# HOTA as submitted and with parts of the matched boxes taken from the ground truth
# (what each part is worth; parts: centre_xy, z, size, yaw, joined by + to combine)
python tools/aicity_eval.py whatif --ground-truth gt.txt --predictions track1.txt
    --parts yaw size centre_xy+z [--max-distance 1.0] [--similarity iou3d]
# any tracker's submission smoothed along its tracks (centres from a local line over K
# frames either side, sizes from the track's median, yaws from their axial mean over Y
# frames either side; with --floor-height the boxes stand on that floor), as tools/infer.py
# does for a config with track_smoothing (mmsparse4d.evaluation.functional.track_smoothing)
python tools/aicity_eval.py smooth --predictions track1.txt --out smoothed.txt
    [--centre-window 10] [--size-window all|none|W] [--yaw-window 20] [--floor-height 0.0]
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

# numpy-only modules, each by its own path (not through mmsparse4d.evaluation.metrics):
# the scorer starts without torch (tests/test_tools/test_aicity_eval.py checks).
from mmsparse4d.datasets.aicity import KNOWN_CLASSES, load_ground_truth
from mmsparse4d.evaluation.functional.aicity_hota import (
    aicity_hota,
    classes_left_out,
    every_class_hota,
)
from mmsparse4d.evaluation.functional.box_errors import (
    ORACLE_PARTS,
    box_error_breakdown,
    substitute_ground_truth,
)
from mmsparse4d.evaluation.functional.hota import METRICS
from mmsparse4d.evaluation.functional.track_smoothing import (
    size_settings,
    size_window_argument,
    smooth_tracks,
)
from mmsparse4d.evaluation.tables import format_table
from mmsparse4d.evaluation.writers.aicity_submission import (
    CLASS,
    FRAME,
    OBJECT,
    SCENE,
    SubmissionError,
    ground_truth_rows,
    read_submission,
    write_submission,
)
from mmsparse4d.utils.input_error import InputError, run_tool

TOOL = 'aicity_eval'


def write_json(path: str, content: dict) -> None:
    try:
        Path(path).write_text(json.dumps(content, indent=1))
    except OSError as error:
        raise InputError(f'cannot write --out: {error.strerror}', path=path) from None


def convert_gt(args) -> None:
    if args.scene_id < 0:
        raise InputError(f'--scene-id {args.scene_id}: must be >= 0')
    ground_truth = load_ground_truth(args.ground_truth)
    rows = ground_truth_rows(ground_truth, args.scene_id, source=args.ground_truth)
    try:
        write_submission(args.out, rows, ground_truth=True)
    except OSError as error:
        raise InputError(f'cannot write --out: {error.strerror}', path=args.out) from None
    print(f'{args.out}: {len(rows)} rows of scene {args.scene_id}')


def read_inputs(args) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth rows [G, 11] of every --ground-truth file and prediction rows [P, 11].

    Raises:
        InputError: no ground-truth rows at all; a prediction in a scene the ground truth
            does not have (the official scorer refuses the whole submission then).
    """
    ground_truth = np.concatenate(
        [read_submission(path, ground_truth=True) for path in args.ground_truth]
    )
    if len(ground_truth) == 0:
        raise InputError(
            f'--ground-truth {" ".join(args.ground_truth)}: no rows in any file, nothing to score'
        )
    predictions, lines = read_submission(args.predictions, return_lines=True)
    scenes = np.unique(ground_truth[:, SCENE])
    unknown = np.flatnonzero(~np.isin(predictions[:, SCENE], scenes))
    if len(unknown):
        index = int(unknown[0])
        raise SubmissionError(
            f'scene_id {int(predictions[index, SCENE])} is not in the ground truth (its '
            f'scenes: {", ".join(str(int(s)) for s in scenes)}); the official scorer refuses '
            'a submission with an undeclared scene',
            path=args.predictions,
            line=int(lines[index]),
        )
    return ground_truth, predictions


def score(args) -> None:
    ground_truth, predictions = read_inputs(args)
    result = aicity_hota(ground_truth, predictions, args.similarity, args.num_frames)
    table = {}
    for scene, per_class in result['per_scene_per_class'].items():
        for class_id, values in per_class.items():
            table[f'scene {scene} / {KNOWN_CLASSES[class_id]}'] = values
        table[f'scene {scene} (weight {result["per_scene"][scene]["weight"]})'] = result[
            'per_scene'
        ][scene]
    table['final'] = result['final']
    print(format_table('scene / class', table, METRICS))
    scored_gt = ground_truth[ground_truth[:, FRAME] < args.num_frames]
    left_out = classes_left_out(result, scored_gt)
    for scene, class_id, rows in left_out:
        print(
            f'scene {scene} / {KNOWN_CLASSES[class_id]}: {rows} ground-truth boxes and no '
            "predictions; the protocol leaves the class out of the scene's mean"
        )
    every = every_class_hota(result, scored_gt)
    print(
        f'HOTA over every class (a class with ground truth and no predictions in a scene '
        f'scored 0 there, where the protocol skips it): {every:.3f}'
    )
    if args.out:
        left = [{'scene': s, 'class': KNOWN_CLASSES[c], 'gt_boxes': n} for s, c, n in left_out]
        write_json(args.out, dict(result, HOTA_every_class=every, classes_left_out=left))


COUNT_COLUMNS = ('gt', 'matched', 'missed', 'confused', 'false_positives')
ERROR_COLUMNS = (
    'centre_xy_median',
    'centre_xy_p90',
    'z_median',
    'w_median',
    'l_median',
    'h_median',
    'yaw_deg_median',
    'yaw_deg_p90',
)
IOU_COLUMNS = ('iou', 'oracle_centre_xy', 'oracle_z', 'oracle_size', 'oracle_yaw')


def errors(args) -> None:
    ground_truth, predictions = read_inputs(args)
    breakdown = box_error_breakdown(ground_truth, predictions, args.max_distance)
    table = {KNOWN_CLASSES[class_id]: values for class_id, values in breakdown.items()}
    print(f'rows paired per frame by BEV centre distance <= {args.max_distance} m')
    print(format_table('class', table, COUNT_COLUMNS, decimals=0))
    print('\nmatched boxes: metres (signed: prediction - ground truth) and degrees (modulo pi)')
    print(format_table('class', table, ERROR_COLUMNS, decimals=3))
    print('\nmean 3D IoU of the matched boxes, and with one part taken from the ground truth')
    print(format_table('class', table, IOU_COLUMNS, decimals=3))
    if args.out:
        write_json(args.out, table)


def whatif(args) -> None:
    # Every variant is checked before any file is read, so a typo fails at once.
    for spec in args.parts:
        unknown = sorted(set(spec.split('+')) - set(ORACLE_PARTS))
        if unknown:
            raise InputError(
                f'--parts {spec}: unknown part {", ".join(map(repr, unknown))}; parts are '
                f'{", ".join(sorted(ORACLE_PARTS))}, joined by + to combine'
            )
    ground_truth, predictions = read_inputs(args)
    variants = {
        spec: substitute_ground_truth(ground_truth, predictions, spec.split('+'), args.max_distance)
        for spec in args.parts
    }
    table = {'as submitted': aicity_hota(ground_truth, predictions, args.similarity)['final']}
    for spec, rows in variants.items():
        table[f'{spec} from ground truth'] = aicity_hota(ground_truth, rows, args.similarity)[
            'final'
        ]
    print(f'matched boxes: same scene, class and frame, BEV centres <= {args.max_distance} m')
    print(format_table('boxes', table, METRICS))
    if args.out:
        write_json(args.out, table)


def smooth(args) -> None:
    for name in ('centre_window', 'yaw_window'):
        if getattr(args, name) < 0:
            flag = '--' + name.replace('_', '-')
            raise InputError(f'{flag} must be >= 0 frames, got {getattr(args, name)}')
    if args.floor_height is not None and not np.isfinite(args.floor_height):
        raise InputError(f'--floor-height must be a height in metres, got {args.floor_height}')
    predictions = read_submission(args.predictions)
    windows = dict(
        centre_window=args.centre_window,
        **size_settings(args.size_window),
        yaw_window=args.yaw_window,
        floor_height=args.floor_height,
    )
    try:
        smoothed = smooth_tracks(predictions, **windows)
    except ValueError as error:
        raise InputError(str(error), path=args.predictions) from None
    try:
        write_submission(args.out, smoothed)
    except OSError as error:
        raise InputError(f'cannot write --out: {error.strerror}', path=args.out) from None
    tracks = len(np.unique(predictions[:, [SCENE, CLASS, OBJECT]], axis=0))
    print(f'{args.out}: {len(smoothed)} rows of {tracks} tracks smoothed ({windows})')


def add_submission_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--ground-truth', nargs='+', required=True, help='ground-truth text files')
    parser.add_argument('--predictions', required=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    convert = commands.add_parser('convert-gt', help='ground_truth.json to submission text')
    convert.add_argument('ground_truth')
    convert.add_argument('--scene-id', type=int, required=True)
    convert.add_argument('--out', required=True)
    convert.set_defaults(run=convert_gt)
    scorer = commands.add_parser('score', help='HOTA of a submission against ground truth')
    add_submission_inputs(scorer)
    scorer.add_argument('--similarity', choices=('iou3d', 'center'), default='iou3d')
    scorer.add_argument('--num-frames', type=int, default=9000)
    scorer.add_argument('--out', help='write the full summary JSON here')
    scorer.set_defaults(run=score)
    breakdown = commands.add_parser(
        'errors', help='per-class misses, false boxes, box errors and oracle IoUs'
    )
    add_submission_inputs(breakdown)
    breakdown.add_argument(
        '--max-distance',
        type=float,
        default=2.0,
        help='pairs farther apart (BEV centres, metres) stay unmatched',
    )
    breakdown.add_argument('--out', help='write the breakdown JSON here')
    breakdown.set_defaults(run=errors)
    counterfactual = commands.add_parser(
        'whatif', help='HOTA with parts of the matched boxes taken from the ground truth'
    )
    add_submission_inputs(counterfactual)
    counterfactual.add_argument(
        '--parts',
        nargs='+',
        required=True,
        help=f'one variant each: parts of {sorted(ORACLE_PARTS)} joined by +, e.g. yaw+size',
    )
    counterfactual.add_argument(
        '--max-distance',
        type=float,
        default=1.0,
        help='pairs farther apart (BEV centres, metres) keep their predicted boxes',
    )
    counterfactual.add_argument('--similarity', choices=('iou3d', 'center'), default='iou3d')
    counterfactual.add_argument('--out', help='write the table JSON here')
    counterfactual.set_defaults(run=whatif)
    smoother = commands.add_parser('smooth', help='a submission smoothed along its tracks')
    smoother.add_argument('--predictions', required=True)
    smoother.add_argument('--out', required=True)
    smoother.add_argument(
        '--centre-window',
        type=int,
        default=10,
        help="frames either side of the line through a track's centres (0: centres kept)",
    )
    smoother.add_argument(
        '--size-window',
        type=size_window_argument,
        default='all',
        help="all: the track's median size; W: the median over W frames either side; none: "
        'sizes kept',
    )
    smoother.add_argument(
        '--yaw-window',
        type=int,
        default=20,
        help="frames either side of the axial mean of a track's yaws (0: yaws kept)",
    )
    smoother.add_argument(
        '--floor-height',
        type=float,
        help="world z of the floor (metres): every box's centre at half its height above it "
        '(default: z kept)',
    )
    smoother.set_defaults(run=smooth)
    args = parser.parse_args(argv)
    if getattr(args, 'num_frames', 1) < 1:
        raise InputError(f'--num-frames must be >= 1, got {args.num_frames}')
    if getattr(args, 'max_distance', 1.0) <= 0:
        raise InputError(f'--max-distance must be > 0 metres, got {args.max_distance:g}')
    args.run(args)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line naming the tool (the default adds our source file and line)."""
    print(f'{TOOL}: warning: {message}', file=sys.stderr if file is None else file)


if __name__ == '__main__':
    warnings.showwarning = show_warning
    run_tool(TOOL, main)
