"""Convert raw scenes (AI City 2025 / Isaac Sim layout) to OVPKL pickles and anchors.

python tools/create_data.py SCENE [SCENE ...] --out data/ovpkl [--data-root DIR]
    [--classes Person Forklift ...] [--ignore-classes PalletTruck ...]
    [--groups 3 --cameras-per-group 5 8 10 --min-overlap 0.1 --max-distance 40 --dilation 2]
    [--anchors 900] [--anchor-sizes mean|class] [--append | --overwrite]
"""

import argparse

from mmsparse4d.datasets.aicity import CLASSES
from mmsparse4d.datasets.converters.anchors import ANCHOR_SIZES
from mmsparse4d.datasets.converters.create_data import GroupingOptions, create_data
from mmsparse4d.utils.input_error import InputError, run_tool


def check_numbers(args) -> None:
    """Refuse counts and distances that mean nothing (a negative --anchors wrote none)."""
    problems = [
        (args.anchors < 0, f'--anchors {args.anchors}: must be >= 0 (0: no anchors)'),
        (args.groups < 0, f'--groups {args.groups}: must be >= 0 (0: no groups)'),
        (
            min(args.cameras_per_group) < 1,
            f'--cameras-per-group {" ".join(map(str, args.cameras_per_group))}: must be >= 1',
        ),
        (
            not 0 <= args.min_overlap <= 1,
            f'--min-overlap {args.min_overlap:g}: a share of the floor, 0 to 1',
        ),
        (args.max_distance <= 0, f'--max-distance {args.max_distance:g}: must be > 0 metres'),
        (args.dilation < 0, f'--dilation {args.dilation}: must be >= 0 cells'),
    ]
    for wrong, message in problems:
        if wrong:
            raise InputError(message)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scenes', nargs='+', help='raw scene folders')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--data-root', help='folder the pickle paths are relative to')
    parser.add_argument(
        '--classes', nargs='+', default=list(CLASSES), help='classes to convert (default: the six)'
    )
    parser.add_argument(
        '--ignore-classes',
        nargs='+',
        default=[],
        help='ground-truth classes whose objects are dropped (any other class outside '
        '--classes is an error)',
    )
    parser.add_argument('--groups', type=int, default=0, help='camera groups per scene (0: none)')
    parser.add_argument('--cameras-per-group', type=int, nargs='+', default=[5, 8, 10])
    parser.add_argument('--min-overlap', type=float, default=0.1)
    parser.add_argument('--max-distance', type=float, default=40.0)
    parser.add_argument('--dilation', type=int, default=2)
    parser.add_argument('--anchors', type=int, default=900, help='k-means anchors (0: none)')
    parser.add_argument(
        '--anchor-sizes',
        choices=ANCHOR_SIZES,
        default='mean',
        help="the anchors' sizes: the mean box (upstream) or each class's median box, the "
        'classes shared over the anchors in proportion to their boxes',
    )
    parser.add_argument('--seed', type=int, default=0)
    earlier = parser.add_mutually_exclusive_group()
    earlier.add_argument(
        '--append',
        action='store_true',
        help='add these scenes to the pickles already in --out (anchors over all of them)',
    )
    earlier.add_argument(
        '--overwrite', action='store_true', help='remove the earlier outputs in --out first'
    )
    args = parser.parse_args(argv)
    check_numbers(args)
    grouping = GroupingOptions(
        n_groups=args.groups,
        cameras_per_group=args.cameras_per_group,
        min_overlap_threshold=args.min_overlap,
        max_distance=args.max_distance,
        dilation=args.dilation,
        seed=args.seed,
    )
    result = create_data(
        args.scenes,
        args.out,
        args.data_root,
        args.classes,
        grouping,
        args.anchors,
        ignore_classes=args.ignore_classes,
        anchor_sizes=args.anchor_sizes,
        existing='append' if args.append else 'overwrite' if args.overwrite else 'refuse',
    )
    for path in [*result.pickles, *result.pictures, result.anchors]:
        if path is not None:
            print(path)


if __name__ == '__main__':
    run_tool('create_data', main)
