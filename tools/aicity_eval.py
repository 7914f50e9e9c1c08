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
"""

import argparse
import json

import numpy as np

from mmsparse4d.datasets.aicity import CLASSES, load_ground_truth
from mmsparse4d.evaluation.functional import (
    aicity_hota,
    box_error_breakdown,
    substitute_ground_truth,
)
from mmsparse4d.evaluation.functional.box_errors import ORACLE_PARTS
from mmsparse4d.evaluation.functional.hota import METRICS
from mmsparse4d.evaluation.metrics.tables import format_table
from mmsparse4d.evaluation.writers import ground_truth_rows, read_submission, write_submission
from mmsparse4d.utils.input_error import run_tool


def convert_gt(args) -> None:
    rows = ground_truth_rows(load_ground_truth(args.ground_truth), args.scene_id)
    write_submission(args.out, rows)
    print(f'{args.out}: {len(rows)} rows of scene {args.scene_id}')


def score(args) -> None:
    ground_truth = np.concatenate([read_submission(path) for path in args.ground_truth])
    predictions = read_submission(args.predictions)
    result = aicity_hota(ground_truth, predictions, args.similarity, args.num_frames)
    table = {}
    for scene, per_class in result['per_scene_per_class'].items():
        for class_id, values in per_class.items():
            table[f'scene {scene} / {CLASSES[class_id]}'] = values
        table[f'scene {scene} (weight {result["per_scene"][scene]["weight"]})'] = result[
            'per_scene'
        ][scene]
    table['final'] = result['final']
    print(format_table('scene / class', table, METRICS))
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(result, file, indent=1)


COUNT_COLUMNS = ('gt', 'matched', 'missed', 'confused', 'false_positives')
ERROR_COLUMNS = ('centre_xy_median', 'centre_xy_p90', 'z_median', 'w_median', 'l_median',
                 'h_median', 'yaw_deg_median', 'yaw_deg_p90')  # fmt: skip
IOU_COLUMNS = ('iou', 'oracle_centre_xy', 'oracle_z', 'oracle_size', 'oracle_yaw')


def errors(args) -> None:
    ground_truth = np.concatenate([read_submission(path) for path in args.ground_truth])
    predictions = read_submission(args.predictions)
    breakdown = box_error_breakdown(ground_truth, predictions, args.max_distance)
    table = {CLASSES[class_id]: values for class_id, values in breakdown.items()}
    print(f'rows paired per frame by BEV centre distance <= {args.max_distance} m')
    print(format_table('class', table, COUNT_COLUMNS, decimals=0))
    print('\nmatched boxes: metres (signed: prediction - ground truth) and degrees (modulo pi)')
    print(format_table('class', table, ERROR_COLUMNS, decimals=3))
    print('\nmean 3D IoU of the matched boxes, and with one part taken from the ground truth')
    print(format_table('class', table, IOU_COLUMNS, decimals=3))
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(table, file, indent=1)


def whatif(args) -> None:
    ground_truth = np.concatenate([read_submission(path) for path in args.ground_truth])
    predictions = read_submission(args.predictions)
    # Every variant is made before any is scored, so a typo fails at once.
    variants = {}
    for spec in args.parts:
        try:
            variants[spec] = substitute_ground_truth(
                ground_truth, predictions, spec.split('+'), args.max_distance
            )
        except ValueError as error:
            raise SystemExit(f'aicity_eval whatif: --parts {spec}: {error}') from None
    table = {'as submitted': aicity_hota(ground_truth, predictions, args.similarity)['final']}
    for spec, rows in variants.items():
        table[f'{spec} from ground truth'] = aicity_hota(ground_truth, rows, args.similarity)[
            'final'
        ]
    print(f'matched boxes: same scene, class and frame, BEV centres <= {args.max_distance} m')
    print(format_table('boxes', table, METRICS))
    if args.out:
        with open(args.out, 'w') as file:
            json.dump(table, file, indent=1)


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
        '--parts', nargs='+', required=True,
        help=f'one variant each: parts of {sorted(ORACLE_PARTS)} joined by +, e.g. yaw+size',
    )  # fmt: skip
    counterfactual.add_argument(
        '--max-distance', type=float, default=1.0,
        help='pairs farther apart (BEV centres, metres) keep their predicted boxes',
    )  # fmt: skip
    counterfactual.add_argument('--similarity', choices=('iou3d', 'center'), default='iou3d')
    counterfactual.add_argument('--out', help='write the table JSON here')
    counterfactual.set_defaults(run=whatif)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == '__main__':
    run_tool('aicity_eval', main)
