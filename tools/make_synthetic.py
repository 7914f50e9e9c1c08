"""Write a synthetic scene in the raw AI City 2025 layout.

python tools/make_synthetic.py OUT_DIR --seed 0 [--cameras 6] [--frames 300]
    [--objects 10] [--size 960 540] [--fps 30] [--rgb-format h5|mp4] [--raw-h5-rgb]
    [--shapes boxes|parts]
"""

import argparse
import math
import time
from pathlib import Path

from mmsparse4d.datasets.synthetic import RGB_FORMATS, write_synthetic_scene
from mmsparse4d.datasets.synthetic.object_shapes import SHAPES
from mmsparse4d.utils.input_error import InputError, run_tool

MAX_CAMERAS = 99  # camera ids run Camera, Camera_01 ... Camera_99


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse arguments that would write a scene its reader refuses, before writing.

    Raises:
        InputError: naming the argument.
    """
    for option, value in (('--frames', args.frames), ('--objects', args.objects)):
        if value < 1:
            raise InputError(f'{option} {value}: must be at least 1')
    if not 1 <= args.cameras <= MAX_CAMERAS:
        raise InputError(f'--cameras {args.cameras}: must be in [1, {MAX_CAMERAS}]')
    width, height = args.size
    if width < 1 or height < 1:
        raise InputError(f'--size {width} {height}: width and height must be at least 1')
    if args.rgb_format == 'mp4' and (width % 2 or height % 2):
        # H.264 in yuv420p stores colour at half resolution: odd sizes cannot be encoded.
        raise InputError(f'--size {width} {height}: --rgb-format mp4 needs even sizes')
    if not (math.isfinite(args.fps) and args.fps > 0):
        raise InputError(f'--fps {args.fps}: must be a positive number')
    if args.workers is not None and args.workers < 1:
        raise InputError(f'--workers {args.workers}: must be at least 1')
    out = Path(args.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError('not an empty folder; choose a new folder for the scene', out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='new (or empty) folder for the scene')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cameras', type=int, default=6)
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--objects', type=int, default=10)
    parser.add_argument('--size', type=int, nargs=2, default=(960, 540), metavar=('W', 'H'))
    parser.add_argument('--fps', type=float, default=30.0)
    parser.add_argument('--rgb-format', choices=RGB_FORMATS, default='h5')
    parser.add_argument(
        '--raw-h5-rgb', action='store_true', help='decoded BGR pixels in h5 instead of JPEG bytes'
    )
    parser.add_argument('--workers', type=int, default=None, help='rendering processes')
    parser.add_argument(
        '--shapes',
        choices=SHAPES,
        default='boxes',
        help='objects as one box each, or built from parts (a forklift mast and forks, legs, '
        'wheels); the ground truth is the same',
    )
    args = parser.parse_args(argv)
    check_arguments(args)
    start = time.perf_counter()
    scene = write_synthetic_scene(
        args.out_dir,
        seed=args.seed,
        num_cameras=args.cameras,
        num_objects=args.objects,
        num_frames=args.frames,
        fps=args.fps,
        width=args.size[0],
        height=args.size[1],
        rgb_format=args.rgb_format,
        encode_h5_rgb=not args.raw_h5_rgb,
        workers=args.workers,
        shapes=args.shapes,
    )
    print(
        f'wrote {args.out_dir}: {len(scene.cameras)} cameras, {scene.num_frames} frames, '
        f'{len(scene.objects)} objects, {len(scene.racks)} racks in '
        f'{time.perf_counter() - start:.1f} s'
    )


if __name__ == '__main__':
    run_tool('make_synthetic', main)
