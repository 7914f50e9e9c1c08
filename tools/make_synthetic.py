"""Write a synthetic scene in the raw AI City 2025 layout.

python tools/make_synthetic.py OUT_DIR --seed 0 [--cameras 6] [--frames 300]
    [--objects 10] [--size 960 540] [--fps 30] [--rgb-format h5|mp4] [--raw-h5-rgb]
"""

import argparse
import time

from mmsparse4d.datasets.synthetic import RGB_FORMATS, write_synthetic_scene
from mmsparse4d.utils.input_error import run_tool


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
    args = parser.parse_args(argv)
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
    )
    print(
        f'wrote {args.out_dir}: {len(scene.cameras)} cameras, {scene.num_frames} frames, '
        f'{len(scene.objects)} objects, {len(scene.racks)} racks in '
        f'{time.perf_counter() - start:.1f} s'
    )


if __name__ == '__main__':
    run_tool('make_synthetic', main)
