"""Measure data-loading throughput (samples per second) of the training pipeline.

Generates (or takes) a raw scene, converts it, and times a DataLoader over the OVPKL
dataset with the training pipeline (h5 RGB and depth, augmentation, depth targets,
packing) for several worker counts. Prints a markdown table.

    python tools/analysis_tools/benchmark_data.py [--cameras 10] [--size 960 540]
        [--frames 48] [--workers 0 2 4] [--scene RAW_SCENE] [--config DATASET_CONFIG]

The pipeline is the config's ``train_pipeline`` (default: the 960x544 dataset base) without
its random camera drop.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import DefaultScope

from mmsparse4d.datasets import OVPKLDataset
from mmsparse4d.datasets.converters.create_data import create_data
from mmsparse4d.datasets.synthetic import write_synthetic_scene
from mmsparse4d.utils.input_error import InputError, run_tool

DATASET_CONFIG = Path(__file__).parents[2] / 'configs/_base_/datasets/synthetic_warehouse.py'


def training_pipeline(config: Path) -> list[dict]:
    """The config's training pipeline without its camera drop: every sample then carries
    all the scene's cameras, the load the table reports."""
    steps = Config.fromfile(str(config)).train_pipeline
    kept = [step for step in steps if step['type'] != 'RandomCameraDrop']
    if len(kept) < len(steps):
        print_log('benchmark_data: RandomCameraDrop left out of the pipeline', 'current')
    return kept


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
    parser.add_argument(
        '--config',
        type=Path,
        default=DATASET_CONFIG,
        help='the config whose train_pipeline is timed (default: the 960x544 dataset base)',
    )
    args = parser.parse_args(argv)
    if args.scene and not Path(args.scene).is_dir():
        raise InputError('no such scene folder', path=args.scene)
    if not args.config.is_file():
        raise InputError('no such config file', path=args.config)
    if args.samples < 1 or min(args.workers) < 0:
        raise InputError(
            f'--samples must be >= 1 and --workers >= 0, got {args.samples} and '
            f'{" ".join(map(str, args.workers))}'
        )
    pipeline = training_pipeline(args.config)
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
                ann_file=str(result.pickles[0]),
                data_root=str(scene.parent),
                pipeline=pipeline,
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
