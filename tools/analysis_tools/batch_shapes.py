"""How often a config's training steps meet a batch shape for the first time.

    python tools/analysis_tools/batch_shapes.py CONFIG [--steps 600] [--seed 0]
        [--cfg-options KEY=VALUE ...]

Real training batches differ in shape from step to step: the backbone's image count (the
sum of the samples' cameras: the layouts differ, and ``RandomCameraDrop`` keeps a random
subset), the head's camera count (the batch's largest sample) and the largest sample's box
count (it sets the denoising groups' width). On a GPU a shape met for the first time costs
more than a repeat (cuDNN's plans for every convolution, the allocator's new blocks), so a
run that keeps meeting new shapes keeps paying that. This walks the config's sequence
sampler over the training set's annotations (no image is read), draws the camera drop with
the pipeline's own ``RandomCameraDrop`` (another random stream than a real run's), and
prints, per window of steps, the share of steps that bring a value not seen in
an earlier step.
"""

import argparse
from collections.abc import Callable, Iterator

import numpy as np
from mmengine.config import DictAction
from mmengine.registry import DefaultScope

from mmsparse4d.engine.cfg_options import check_cfg_options
from mmsparse4d.engine.cli import read_config
from mmsparse4d.utils.input_error import InputError, run_tool

SHAPES = ('backbone images', 'head cameras', 'boxes per sample')


def camera_drop(pipeline: list) -> tuple[Callable[[int], int], str]:
    """How many of a sample's cameras the pipeline's ``RandomCameraDrop`` keeps, drawn by
    the transform itself (numpy's global random state, as in the data workers), and its
    rule in words; without one, all of them."""
    from mmsparse4d.datasets.transforms.random_camera_drop import RandomCameraDrop

    steps = [step for step in pipeline if step.get('type') == 'RandomCameraDrop']
    if not steps:
        return (lambda cameras: cameras), 'none'
    transform = RandomCameraDrop(**{k: v for k, v in steps[0].items() if k != 'type'})

    def kept(cameras: int) -> int:
        return len(transform.transform({'cams': dict.fromkeys(range(cameras))})['cams'])

    return kept, f'probability {transform.prob:g}, at least {transform.min_cameras}'


def endless(sampler) -> Iterator[int]:
    """The sampler's indices pass after pass, as the training loop draws them (each pass a
    new epoch of its random draws)."""
    while True:
        yield from sampler
        sampler.set_epoch(getattr(sampler, 'epoch', 0) + 1)


def step_shapes(
    samples: dict[int, tuple[int, int]],
    indices: Iterator[int],
    batch_size: int,
    steps: int,
    kept_cameras: Callable[[int], int],
) -> list[tuple[int, int, int]]:
    """Per step (backbone images, head cameras, boxes per sample): ``samples`` maps a
    dataset index to its (cameras, boxes), ``kept_cameras`` a camera count to the count
    the pipeline keeps."""
    shapes = []
    for _ in range(steps):
        batch = [samples[next(indices)] for _ in range(batch_size)]
        cameras = [kept_cameras(count) for count, _ in batch]
        shapes.append((sum(cameras), max(cameras), max(boxes for _, boxes in batch)))
    return shapes


def windows(steps: int, first: int = 50) -> list[tuple[int, int]]:
    """[0, 50), [50, 100), [100, 200), [200, 400), ...: the start in detail, then doubling."""
    bounds = [0, min(first, steps)]
    while bounds[-1] < steps:
        bounds.append(min(steps, max(2 * bounds[-1], bounds[-1] + first)))
    return list(zip(bounds[:-1], bounds[1:], strict=False))


def first_sight_table(shapes: list[tuple[int, int, int]]) -> str:
    """A markdown table: per window, the share of steps with a value of each shape (and of
    any) not seen in an earlier step; last, the distinct values over all steps."""
    seen = [set() for _ in SHAPES]
    new = np.zeros((len(shapes), len(SHAPES)), dtype=bool)
    for step, shape in enumerate(shapes):
        for column, value in enumerate(shape):
            new[step, column] = value not in seen[column]
            seen[column].add(value)
    lines = [
        '| steps | ' + ' | '.join(f'new {name}' for name in SHAPES) + ' | any new |',
        '|---|' + '---:|' * (len(SHAPES) + 1),
    ]
    for start, end in windows(len(shapes)):
        part = new[start:end]
        cells = [f'{part[:, c].mean():.0%}' for c in range(len(SHAPES))]
        cells.append(f'{part.any(axis=1).mean():.0%}')
        lines.append(f'| {start}-{end} | ' + ' | '.join(cells) + ' |')
    distinct = ' | '.join(str(len(values)) for values in seen)
    lines.append(f'| distinct values | {distinct} | |')
    return '\n'.join(lines)


def training_samples(dataset) -> dict[int, tuple[int, int]]:
    """Every training sample's (cameras, boxes), from its annotation."""
    samples = {}
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        samples[index] = (len(info['cams']), len(info['gt_bboxes_3d']))
    return samples


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--steps', type=int, default=600)
    parser.add_argument(
        '--seed', type=int, default=0, help="the sampler's and the camera drop's seed"
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.steps < 1:
        raise InputError(f'--steps must be >= 1, got {args.steps}')
    cfg = read_config(args.config)
    cfg.merge_from_dict(check_cfg_options(cfg, args.cfg_options))
    loader = cfg.train_dataloader
    sampler_cfg = dict(loader.get('sampler') or {})
    if sampler_cfg.get('type') != 'SequentialGroupSampler':
        raise InputError(
            'train_dataloader.sampler must be SequentialGroupSampler (a batch slot per '
            f'sequence), got {sampler_cfg.get("type")!r}',
            args.config,
        )
    import mmsparse4d.datasets  # noqa: F401  (registers the datasets and samplers)
    from mmsparse4d.registry import DATA_SAMPLERS, DATASETS

    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        dataset = DATASETS.build(loader.dataset)
        dataset.full_init()
        sampler = DATA_SAMPLERS.build(
            dict(sampler_cfg, dataset=dataset, seed=args.seed, rank=0, world_size=1)
        )
    np.random.seed(args.seed)
    kept_cameras, rule = camera_drop(loader.dataset.get('pipeline', []))
    shapes = step_shapes(
        training_samples(dataset), endless(sampler), loader.batch_size, args.steps, kept_cameras
    )
    print(
        f'{args.steps} steps of {loader.batch_size} samples over {len(dataset)} training '
        f'samples; camera drop: {rule}\n'
    )
    print(first_sight_table(shapes))


if __name__ == '__main__':
    run_tool('batch_shapes', main)
