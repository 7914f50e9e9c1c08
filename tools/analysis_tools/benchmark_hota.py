"""Time HOTA (3D IoU similarity, AI City aggregation) on a long, crowded sequence.

    OMP_NUM_THREADS=1 taskset -c 0 python tools/analysis_tools/benchmark_hota.py \
        [--frames 9000] [--objects 100]
"""

import argparse
import time

import numpy as np
import torch

from mmsparse4d.evaluation.functional import aicity_hota
from mmsparse4d.utils.input_error import InputError, run_tool


def make_rows(frames: int, objects: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    start = rng.uniform(-25, 25, (objects, 2))
    velocity = rng.normal(0, 0.02, (objects, 2))
    t = np.arange(frames)
    gt, pred = [], []
    for i in range(objects):
        centre = start[i] + t[:, None] * velocity[i]
        boxes = np.c_[
            centre, np.full(frames, 0.9), np.tile([0.5, 0.6, 1.8], (frames, 1)), np.zeros(frames)
        ]
        gt.append(np.c_[np.zeros(frames), np.zeros(frames), np.full(frames, i + 1), t, boxes])
        noisy = boxes + np.c_[rng.normal(0, 0.1, (frames, 2)), np.zeros((frames, 5))]
        track = np.where(t < rng.integers(0, frames), i + 1, i + 1 + objects)  # one id switch
        keep = rng.random(frames) > 0.05
        pred.append(np.c_[np.zeros(frames), np.zeros(frames), track, t, noisy][keep])
    return np.concatenate(gt), np.concatenate(pred)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=9000)
    parser.add_argument('--objects', type=int, default=100)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.objects < 1:
        raise InputError(
            f'--frames and --objects must be >= 1, got {args.frames} and {args.objects}'
        )
    torch.set_num_threads(1)
    gt, pred = make_rows(args.frames, args.objects)
    start = time.perf_counter()
    result = aicity_hota(gt, pred, num_frames=args.frames)
    elapsed = time.perf_counter() - start
    hota = result['final']['HOTA']
    print(
        f'{args.frames} frames x {args.objects} objects ({len(gt)} gt, {len(pred)} predicted '
        f'rows): HOTA {hota:.2f} in {elapsed:.1f} s on one thread'
    )


if __name__ == '__main__':
    run_tool('benchmark_hota', main)
