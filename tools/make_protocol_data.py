"""Render and convert the protocol's training (and validation) scenes for a training run.

    python tools/make_protocol_data.py DATA_DIR [--training 64] [--first-training 0]
        [--frames 128] [--validation] [--validation-frames 300] [--size 480 270] [--workers N]
        [--anchors 300] [--anchor-sizes class]

Training scenes are ``--training`` training seeds from the ``--first-training``-th on (0-99,
then 108-207: ``--first-training 100`` starts at seed 108), each with its own
layout from ``scene_spec`` (4-12 cameras, 8-25 objects, h5 or mp4); ``--validation`` adds
the validation seeds (100-107), on which choices are made. Scenes render in parallel into
DATA_DIR/raw (kept when already rendered with this generator and these arguments) and
convert with ``tools/create_data.py``'s conversion: DATA_DIR/ovpkl/train (pickles, asset
ids, the anchors) and DATA_DIR/ovpkl/val. Test seeds are never rendered here: they are
drawn at evaluation time by ``tools/evaluate_synthetic.py``.
"""

import argparse
import os
import shutil
import time
from pathlib import Path

from mmsparse4d.datasets.converters.anchors import ANCHOR_SIZES
from mmsparse4d.datasets.converters.create_data import create_data
from mmsparse4d.datasets.synthetic.protocol import (
    TRAINING_SEEDS,
    VALIDATION_SEEDS,
    scene_spec,
    training_seeds,
)
from mmsparse4d.datasets.synthetic.render_scenes import render_scenes
from mmsparse4d.utils.input_error import InputError, run_tool


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('data_dir', type=Path)
    parser.add_argument('--training', type=int, default=64, help='training scenes')
    parser.add_argument(
        '--first-training', type=int, default=0, help='index of the first training seed taken'
    )
    parser.add_argument('--frames', type=int, default=128, help='frames per training scene')
    parser.add_argument('--validation', action='store_true', help='also the validation scenes')
    parser.add_argument('--validation-frames', type=int, default=300)
    parser.add_argument('--size', type=int, nargs=2, default=(480, 270), metavar=('W', 'H'))
    parser.add_argument('--workers', type=int, default=os.cpu_count(), help='rendering processes')
    parser.add_argument('--anchors', type=int, default=300, help='k-means anchors')
    parser.add_argument('--anchor-sizes', choices=ANCHOR_SIZES, default='class')
    return parser.parse_args(argv)


def check_args(args) -> None:
    if not 1 <= args.training <= len(TRAINING_SEEDS):
        raise InputError(
            f'--training {args.training}: the protocol has {len(TRAINING_SEEDS)} training seeds'
        )
    try:
        training_seeds(args.training, args.first_training)
    except ValueError:
        raise InputError(
            f'--first-training {args.first_training} --training {args.training}: the protocol '
            f'has {len(TRAINING_SEEDS)} training seeds'
        ) from None
    for name in ('frames', 'validation_frames', 'workers', 'anchors'):
        if getattr(args, name) < 1:
            raise InputError(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if min(args.size) < 16:
        raise InputError(f'--size {args.size[0]} {args.size[1]}: both must be >= 16 pixels')
    if args.data_dir.exists() and not args.data_dir.is_dir():
        raise InputError('is a file, not a folder', path=args.data_dir)


def main(argv=None) -> None:
    args = parse_args(argv)
    check_args(args)
    start = time.perf_counter()
    size = tuple(args.size)
    seeds = training_seeds(args.training, args.first_training)
    training = [scene_spec(seed, args.frames, size) for seed in seeds]
    validation = [scene_spec(s, args.validation_frames, size) for s in VALIDATION_SEEDS]
    raw = args.data_dir / 'raw'
    scenes = render_scenes(training + (validation if args.validation else []), raw, args.workers)
    print(f'rendered in {time.perf_counter() - start:.0f} s', flush=True)
    ovpkl = args.data_dir / 'ovpkl'
    shutil.rmtree(ovpkl / 'train', ignore_errors=True)  # exactly the scenes asked for
    result = create_data(
        scenes[: len(training)],
        ovpkl / 'train',
        raw,
        num_anchors=args.anchors,
        progress=False,
        anchor_sizes=args.anchor_sizes,
    )
    print(f'training: {len(result.pickles)} scenes -> {ovpkl / "train"}; anchors {result.anchors}')
    if args.validation:
        shutil.rmtree(ovpkl / 'val', ignore_errors=True)
        result = create_data(
            scenes[len(training) :], ovpkl / 'val', raw, num_anchors=0, progress=False
        )
        print(f'validation: {len(result.pickles)} scenes -> {ovpkl / "val"}')
    print(f'done in {time.perf_counter() - start:.0f} s')


if __name__ == '__main__':
    run_tool('make_protocol_data', main)
