"""Measure data-loading throughput (samples per second) of the training pipeline.

Generates (or takes) a raw scene, converts it, and times a DataLoader over the OVPKL
dataset with the training pipeline (h5 RGB and depth, augmentation, depth targets,
packing) for several worker counts. Prints a markdown table.

    python tools/analysis_tools/benchmark_data.py [--cameras 10] [--size 960 540]
        [--frames 48] [--workers 0 2 4] [--scene RAW_SCENE]
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from mmsparse4d.datasets import OVPKLDataset
from mmsparse4d.datasets.converters.create_data import create_data
from mmsparse4d.datasets.synthetic import write_synthetic_scene
from mmsparse4d.utils.input_error import InputError, run_tool

PIPELINE = [
    dict(type='LoadMultiViewImages'),
    dict(type='LoadMultiViewDepth'),
    dict(
        type='MultiViewImageAugmentation',
        final_size=(960, 544),
        resize_range=(1.0, 1.15),
        flip_prob=0.5,
        rotate_range=(-5.4, 5.4),
    ),
    dict(type='GlobalRotation3D'),
    dict(type='MultiViewPhotometricDistortion'),
    dict(type='MultiScaleDepthTargets'),
    dict(type='PackSparse4DInputs'),
]


def samples_per_second(dataset, workers: int, samples: int, warmup: int = 4) -> float:
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=1,
        shuffle=True,
        num_workers=workers,
        collate_fn=pseudo_collate,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(0),
    )
    iterator = iter(loader)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(samples):
        next(iterator)
    return samples / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scene', help='an existing raw scene (default: generate one)')
    parser.add_argument('--cameras', type=int, default=10)
    parser.add_argument('--frames', type=int, default=48)
    parser.add_argument('--size', type=int, nargs=2, default=(960, 540))
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2, 4])
    parser.add_argument('--samples', type=int, default=40)
    args = parser.parse_args(argv)
    if args.scene and not Path(args.scene).is_dir():
        raise InputError('no such scene folder', path=args.scene)
    if args.samples < 1 or min(args.workers) < 0:
        raise InputError(
            f'--samples must be >= 1 and --workers >= 0, got {args.samples} and '
            f'{" ".join(map(str, args.workers))}'
        )
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(args.scene) if args.scene else Path(tmp) / 'raw' / 'Warehouse_000'
        if not args.scene:
            write_synthetic_scene(
                scene,
                seed=0,
                num_cameras=args.cameras,
                num_frames=args.frames,
                width=args.size[0],
                height=args.size[1],
            )
        result = create_data([scene], Path(tmp) / 'ovpkl', num_anchors=0, progress=False)
        with DefaultScope.overwrite_default_scope('mmsparse4d'):
            dataset = OVPKLDataset(
                ann_file=str(result.pickles[0]), data_root=str(scene.parent), pipeline=PIPELINE
            )
        cams = len(dataset.get_data_info(0)['cams'])
        rows = [(w, samples_per_second(dataset, w, args.samples)) for w in args.workers]
    print(
        f'\n{cams} cameras at {args.size[0]}x{args.size[1]} from h5 (JPEG RGB, uint16 depth), '
        f'{torch.get_num_threads()} torch threads'
    )
    print('| workers | samples/s | camera frames/s |')
    print('|---:|---:|---:|')
    for workers, rate in rows:
        print(f'| {workers} | {rate:.2f} | {rate * cams:.1f} |')


if __name__ == '__main__':
    run_tool('benchmark_data', main)
