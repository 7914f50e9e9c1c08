"""Measure data-loading throughput (samples per second) of the training pipeline.

Generates (or takes) a raw scene, converts it, and times a DataLoader over the OVPKL
dataset with the training pipeline (h5 RGB and depth, augmentation, depth targets,
packing) for several worker counts. Prints a markdown table.

    python tools/analysis_tools/benchmark_data.py [--cameras 10] [--size 960 540]
        [--frames 48] [--scenes 1] [--workers 0 2 4] [--scene RAW_SCENE]
        [--config DATASET_CONFIG] [--video h5|mp4] [--strides 1 12 36] [--batch B]
        [--loaders turns|slots|both] [--warp-images host|device]
        [--colour-distortion host|device] [--small-tensors by-value|shared-memory]
        [--ceiling K [K ...]] [--profile N]

The pipeline is the config's ``train_pipeline`` (default: the 960x544 dataset base) without
its random camera drop, in processes set up as the Runner sets them up (the config's
``env_cfg.mp_cfg``: OpenCV single-threaded). In a data worker an mp4 is decoded on one
thread. Rates are steady-state lower bounds: what the workers can have made before the
timed window is not credited to it, so at the least ``--samples``/``--batches`` allowed a
rate can read up to 2x low; time ten times as many for a bound within 10%. The workers send
small tensors by value, as the training loop's do (``--small-tensors``).

``--video mp4`` writes the generated scene's RGB as H.264 (keyframe every 30 frames, as
the generator writes it) and adds a second table: the time per frame read from one
camera's video when consecutive reads are ``--strides`` frames apart. With batches handed
to the workers in turn, a data worker's consecutive reads of one sequence are (data
workers) x (the sequence's frame step) apart: from an mp4 each such read decodes the frames
in between, or seeks to a keyframe and decodes from there. Workers owning batch slots read
a sequence's frames in order.

``--batch B`` adds a table in training order: the config's ``train_dataloader`` sampler
(``SequentialGroupSampler``: B slots, each walking its own sub-sequence at a drawn frame
rate) at batch B, stacked by the config's collate, loaded two ways: batches handed to the
workers in turn (torch's ``DataLoader``, the Runner's loader for h5 data), and workers that
each own fixed slots of every batch (``SlotDataLoader``, what the training loop uses for
video data: a worker's reads of a video then follow its frames; min(workers, B) workers).
Its samples/s is what a training step of batch B can be fed; ``--scenes`` generates several
scenes so that the slots read different videos.
"""

import argparse
import cProfile
import multiprocessing
import pstats
import tempfile
import time
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmengine.utils.dl_utils import set_multi_processing

from mmsparse4d.datasets import OVPKLDataset
from mmsparse4d.datasets.aicity.frame_readers import Mp4Reader
from mmsparse4d.datasets.converters.create_data import create_data
from mmsparse4d.datasets.multiview_collate import multiview_collate
from mmsparse4d.datasets.samplers.sequential_group_sampler import SequentialGroupSampler
from mmsparse4d.datasets.slot_data_loader import SLOT_QUEUE_DEPTH, SlotDataLoader
from mmsparse4d.datasets.synthetic import write_synthetic_scene
from mmsparse4d.datasets.worker_transfer import send_small_tensors_by_value
from mmsparse4d.utils.input_error import InputError, run_tool

DATASET_CONFIG = Path(__file__).parents[2] / 'configs/_base_/datasets/synthetic_warehouse.py'


def training_pipeline(
    config: Path, warp_images: str | None = None, colour_distortion: str | None = None
) -> list[dict]:
    """The config's training pipeline without its camera drop: every sample then carries
    all the scene's cameras, the load the table reports. ``warp_images`` ('host' or
    'device'), when given, is set on its ``MultiViewImageAugmentation``, and
    ``colour_distortion`` as its ``MultiViewPhotometricDistortion``'s ``apply``."""
    steps = Config.fromfile(str(config)).train_pipeline
    kept = [step for step in steps if step['type'] != 'RandomCameraDrop']
    if len(kept) < len(steps):
        print_log('benchmark_data: RandomCameraDrop left out of the pipeline', 'current')
    if warp_images is not None:
        augmentations = [step for step in kept if step['type'] == 'MultiViewImageAugmentation']
        if not augmentations:
            raise InputError('--warp-images: the pipeline has no MultiViewImageAugmentation')
        for step in augmentations:
            step['warp_images'] = warp_images
        print_log(f'benchmark_data: images warped on the {warp_images}', 'current')
    if colour_distortion is not None:
        distortions = [s for s in kept if s['type'] == 'MultiViewPhotometricDistortion']
        if not distortions:
            raise InputError(
                '--colour-distortion: the pipeline has no MultiViewPhotometricDistortion'
            )
        for step in distortions:
            step['apply'] = colour_distortion
        print_log(f'benchmark_data: colours distorted on the {colour_distortion}', 'current')
    return kept


def apply_multiprocessing_settings(config: Path) -> dict:
    """Set up processes as mmengine's Runner does for a training run of ``config``: its
    ``env_cfg.mp_cfg`` (start method and OpenCV's threads; the base runtime's
    ``opencv_num_threads=0`` keeps OpenCV single-threaded in every worker)."""
    settings = dict(Config.fromfile(str(config)).get('env_cfg', {}).get('mp_cfg', {}))
    set_multi_processing(**settings, distributed=False)
    print_log(f'benchmark_data: the processes set up as the Runner does: {settings}', 'current')
    return settings


# Batches each data worker keeps in flight (torch's default, as in training).
PREFETCH_FACTOR = 2


def in_flight(workers: int) -> int:
    """Batches the workers may have finished or started before the timed window."""
    return PREFETCH_FACTOR * workers


def slot_in_flight() -> int:
    """Batches a ``SlotDataLoader`` may hold done or begun: each worker's part of
    ``PREFETCH_FACTOR`` batches, those collated and queued, and the one being collated."""
    return PREFETCH_FACTOR + SLOT_QUEUE_DEPTH + 1


def warm_up_batches(workers: int, held: int | None = None) -> int:
    """Batches drawn untimed first, so that every worker has started."""
    return max(2, in_flight(workers) if held is None else held)


def batches_per_second(
    loader, batches: int, workers: int, held: int | None = None, cpu: list | None = None
) -> float:
    """Steady-state batches/s of ``loader``: a lower bound that startup cannot inflate.

    ``held``: batches the loader may hold done or begun (default ``in_flight(workers)``).
    The first ``held`` batches (at least 2) are drawn untimed, so every worker has started;
    the loader may then hold up to ``held`` batches done or begun, so at least
    ``batches - held`` of the ``batches`` timed ones were made inside the timed window.
    ``cpu``, when given, receives the CPU seconds this process (all its threads: receiving,
    collating, pinning) spent per timed batch.
    """
    held = in_flight(workers) if held is None else held
    iterator = iter(loader)
    for _ in range(warm_up_batches(workers, held)):
        next(iterator)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    if cpu is not None:
        cpu.append((time.process_time() - start_cpu) / batches)
    return (batches - held) / seconds


def loader_options(workers: int, small_tensors_by_value: bool = True) -> dict:
    """The loader's worker settings; with ``small_tensors_by_value`` its workers send small
    tensors by value, as the training loop's do (``mmsparse4d.datasets.worker_transfer``)."""
    options = dict(num_workers=workers, persistent_workers=False)
    if workers:
        options['prefetch_factor'] = PREFETCH_FACTOR
    if workers and small_tensors_by_value:
        options['worker_init_fn'] = send_small_tensors_by_value
    return options


def samples_per_second(
    dataset, workers: int, samples: int, small_tensors_by_value: bool = True
) -> float:
    # Drawn without replacement, as many permutations as the draws need.
    draws = samples + warm_up_batches(workers)
    sampler = torch.utils.data.RandomSampler(
        dataset, num_samples=draws, generator=torch.Generator().manual_seed(0)
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=1,
        sampler=sampler,
        collate_fn=pseudo_collate,
        **loader_options(workers, small_tensors_by_value),
    )
    return batches_per_second(loader, samples, workers)


def training_order_samples_per_second(
    dataset,
    sampler_options: dict,
    batch: int,
    workers: int,
    batches: int,
    slots: bool = False,
    small_tensors_by_value: bool = True,
) -> tuple[float, float]:
    """Samples/s of a loader built as the Runner builds the training one: the sequence
    sampler at ``batch`` (its other options from the config), batches stacked by the
    config's collate; with ``slots``, wrapped as the training loop wraps it for video data
    (``SlotDataLoader``). The sampler's streams cycle through the sequences; it is drawn
    for as many batches as the timing needs, however long the data. Returns samples/s and
    the CPU seconds per sample of this process (the training process's share: receiving,
    collating, pinning; with no workers, the loading too)."""
    held = slot_in_flight() if slots else None
    sampler = SequentialGroupSampler(
        dataset, batch_size=batch, seed=0, rank=0, world_size=1, **sampler_options
    )
    sampler.samples_per_slot = batches + warm_up_batches(workers, held)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        collate_fn=multiview_collate,
        **loader_options(workers, small_tensors_by_value),
    )
    timed = SlotDataLoader(loader) if slots else loader
    cpu = []
    try:
        rate = batch * batches_per_second(timed, batches, workers, held, cpu=cpu)
    finally:
        if slots:
            timed.close()
    return rate, cpu[0] / batch


def _ceiling_process(dataset, stream: list[int], barrier, results) -> None:
    """One process of ``host_ceiling``: set up as a data worker (one torch and one OpenCV
    thread), two samples untimed, then ``stream``'s samples timed."""
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    for index in stream[:2]:
        dataset[index]
    barrier.wait()
    start = time.perf_counter()
    for index in stream[2:]:
        dataset[index]
    results.put(time.perf_counter() - start)


def host_ceiling(dataset, sampler_options: dict, processes: int, samples: int) -> float:
    """Samples/s of ``processes`` independent processes, each loading one slot's stream of
    the sequence sampler at batch ``processes`` (what a slot-owning worker reads), with no
    data loader: no transfer to a training process, no collating. What the host's cores
    can load, the ceiling of any loader on it. Forked processes (Linux)."""
    sampler = SequentialGroupSampler(
        dataset, batch_size=processes, seed=0, rank=0, world_size=1, **sampler_options
    )
    streams = []
    for slot in range(processes):
        drawn = sampler._slot_stream(slot)
        streams.append([next(drawn) for _ in range(samples + 2)])
    context = multiprocessing.get_context('fork')
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_ceiling_process, args=(dataset, stream, barrier, results))
        for stream in streams
    ]
    for worker in workers:
        worker.start()
    seconds = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return processes * samples / max(seconds)


def sampler_options(config: Path) -> dict:
    """The config's training sampler options, less its type and batch size."""
    sampler = dict(Config.fromfile(str(config)).train_dataloader.sampler)
    if sampler.pop('type') != 'SequentialGroupSampler':
        raise InputError('train_dataloader.sampler is not a SequentialGroupSampler', path=config)
    sampler.pop('batch_size', None)
    return sampler


def print_rates(
    rows: list[tuple], cams: int, labels: tuple[str, ...] = (), first: str = 'workers'
) -> None:
    """A markdown table of (data workers, *labels, samples/s) rows with camera frames/s."""
    print('| ' + ' | '.join([first, *labels, 'samples/s', 'camera frames/s']) + ' |')
    print('|' + '|'.join(['---:', *['---'] * len(labels), '---:', '---:']) + '|')
    for workers, *named, rate in rows:
        cells = [str(workers), *named, f'{rate:.2f}', f'{rate * cams:.1f}']
        print('| ' + ' | '.join(cells) + ' |')


def profile_samples(dataset, samples: int, top: int = 12) -> float:
    """Seconds per sample of the pipeline in this process over ``samples`` samples (after
    one untimed), and the ``top`` functions by their own time under ``cProfile``, printed."""
    dataset[0]
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for index in range(1, samples + 1):
        dataset[index % len(dataset)]
    profiler.disable()
    per_sample = (time.perf_counter() - start) / samples
    pstats.Stats(profiler).sort_stats('tottime').print_stats(top)
    return per_sample


def mp4_read_costs(video: Path, strides: list[int], reads: int) -> list[tuple[int, float]]:
    """Milliseconds per frame read from ``video`` (``Mp4Reader``, one process) when
    consecutive reads are ``stride`` frames apart, ``reads`` reads per stride from frame 0."""
    costs = []
    for stride in strides:
        reader = Mp4Reader(video)
        reader.read(0)  # opened and first decoded outside the timing
        start = time.perf_counter()
        for index in range(1, reads + 1):
            reader.read(index * stride)
        costs.append((stride, (time.perf_counter() - start) / reads * 1000))
        reader.close()
    return costs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scene', help='an existing raw scene (default: generate one)')
    parser.add_argument('--cameras', type=int, default=10)
    parser.add_argument('--frames', type=int, default=48)
    parser.add_argument(
        '--scenes', type=int, default=1, help='scenes to generate (seeds 0, 1, ...)'
    )
    parser.add_argument(
        '--batch', type=int, help='add a table in training order at this batch size'
    )
    parser.add_argument(
        '--batches', type=int, default=10, help='timed batches of the training-order table'
    )
    parser.add_argument(
        '--warp-images',
        choices=('host', 'device'),
        help="set MultiViewImageAugmentation's warp_images: 'device' leaves the images' "
        'warp to the data preprocessor (not timed here)',
    )
    parser.add_argument(
        '--colour-distortion',
        choices=('host', 'device'),
        help="set MultiViewPhotometricDistortion's apply: 'device' leaves the colour changes "
        'to the data preprocessor (not timed here)',
    )
    parser.add_argument(
        '--loaders',
        choices=('turns', 'slots', 'both'),
        default='both',
        help='training-order table: batches to the workers in turn, workers owning batch '
        'slots (SlotDataLoader; with 2 or more workers and slots), or both',
    )
    parser.add_argument(
        '--small-tensors',
        choices=('by-value', 'shared-memory'),
        default='by-value',
        help="how the workers send tensors of at most 256 KiB: by value (the training loop's "
        "default, small_tensors_by_value) or through shared memory (torch's way)",
    )
    parser.add_argument(
        '--ceiling',
        type=int,
        nargs='+',
        default=[],
        metavar='K',
        help="also time K independent processes loading the sampler's slot streams without "
        "a data loader (--batches samples each): the host's ceiling",
    )
    parser.add_argument('--size', type=int, nargs=2, default=(960, 540))
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2, 4])
    parser.add_argument('--samples', type=int, default=40)
    parser.add_argument(
        '--profile',
        type=int,
        default=0,
        metavar='N',
        help='also time N samples in this process under cProfile (per sample, top functions)',
    )
    parser.add_argument(
        '--video', choices=('h5', 'mp4'), default='h5', help="the generated scene's RGB files"
    )
    parser.add_argument(
        '--strides',
        type=int,
        nargs='+',
        default=[1, 12, 36],
        help='with --video mp4: frame strides of the read-cost table',
    )
    parser.add_argument('--reads', type=int, default=8, help='reads per stride (--video mp4)')
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
    if args.ceiling and (min(args.ceiling) < 1 or args.batches < 1):
        raise InputError(f'--ceiling and --batches must be >= 1, got {args.ceiling} {args.batches}')
    if min(args.strides) < 1 or args.reads < 1:
        raise InputError(f'--strides and --reads must be >= 1, got {args.strides} {args.reads}')
    if args.scene and args.video == 'mp4':
        raise InputError('--video is for a generated scene; leave it out with --scene')
    if args.scenes < 1 or (args.scene and args.scenes != 1):
        raise InputError(f'--scenes must be >= 1 and is for generated scenes, got {args.scenes}')
    if args.batch is not None and (args.batch < 1 or args.batches < 1):
        raise InputError(f'--batch and --batches must be >= 1, got {args.batch} {args.batches}')
    # The timed draws must outnumber what the workers can hold before the window twice.
    held = in_flight(max(args.workers))
    least = 2 * held + 1
    if args.samples < least or (args.batch and args.batches < least):
        raise InputError(
            f'--samples and --batches must be >= {least} with {max(args.workers)} workers '
            f'(twice the {held} batches they keep in flight, plus one), '
            f'got {args.samples} and {args.batches}'
        )
    slots_timed = args.batch and args.loaders != 'turns' and min(max(args.workers), args.batch) >= 2
    if slots_timed and args.batches < 2 * slot_in_flight() + 1:
        raise InputError(
            f'--batches must be >= {2 * slot_in_flight() + 1} for the slots loader (twice '
            f'the {slot_in_flight()} batches it keeps in flight, plus one), got {args.batches}'
        )
    options = sampler_options(args.config) if args.batch or args.ceiling else {}
    frames = args.frames
    if args.video == 'mp4':  # the read-cost table reads up to reads x stride frames in
        frames = max(frames, args.reads * max(args.strides) + 1)
    pipeline = training_pipeline(args.config, args.warp_images, args.colour_distortion)
    apply_multiprocessing_settings(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        scenes = [Path(args.scene)] if args.scene else []
        for seed in range(0 if args.scene else args.scenes):
            scenes.append(Path(tmp) / 'raw' / f'Warehouse_{seed:03d}')
            write_synthetic_scene(
                scenes[-1],
                seed=seed,
                num_cameras=args.cameras,
                num_frames=frames,
                width=args.size[0],
                height=args.size[1],
                rgb_format=args.video,
            )
        scene = scenes[0]
        create_data(scenes, Path(tmp) / 'ovpkl', num_anchors=0, progress=False)
        with DefaultScope.overwrite_default_scope('mmsparse4d'):
            dataset = OVPKLDataset(
                ann_file=str(Path(tmp) / 'ovpkl'),
                data_root=str(scene.parent),
                pipeline=pipeline,
            )
        cams = len(dataset.get_data_info(0)['cams'])
        profiled = profile_samples(dataset, args.profile) if args.profile > 0 else None
        by_value = args.small_tensors == 'by-value'
        rows = [(w, samples_per_second(dataset, w, args.samples, by_value)) for w in args.workers]
        ordered = []
        for w in args.workers if args.batch else []:
            if args.loaders in ('turns', 'both'):
                rate, cpu = training_order_samples_per_second(
                    dataset, options, args.batch, w, args.batches, small_tensors_by_value=by_value
                )
                ordered.append((w, 'in turn', f'{1e3 * cpu:.1f}', rate))
            if args.loaders in ('slots', 'both') and min(w, args.batch) >= 2:
                rate, cpu = training_order_samples_per_second(
                    dataset, options, args.batch, w, args.batches, True, by_value
                )
                ordered.append((min(w, args.batch), 'slots', f'{1e3 * cpu:.1f}', rate))
        ceiling = [(k, host_ceiling(dataset, options, k, args.batches)) for k in args.ceiling]
        video = sorted((scene / 'videos').glob('*.mp4'))[:1] if args.video == 'mp4' else []
        strides = mp4_read_costs(video[0], args.strides, args.reads) if video else []
    rgb = 'mp4 (H.264) RGB' if args.video == 'mp4' else 'h5 (JPEG RGB'
    source = f'{rgb}, h5 uint16 depth' if args.video == 'mp4' else f'{rgb}, uint16 depth)'
    print(
        f'\n{cams} cameras at {args.size[0]}x{args.size[1]} from {source}, '
        f'{torch.get_num_threads()} torch threads, small tensors sent {args.small_tensors}, '
        'shuffled single samples'
    )
    print_rates(rows, cams)
    if profiled is not None:
        print(f'\none process under cProfile: {profiled:.4f} s per sample ({args.profile} samples)')
    if ordered:
        print(
            f'\nin training order: {len(scenes)} scenes of {len(dataset)} frames in all, '
            f'batch {args.batch}, sampler {options}'
        )
        print_rates(ordered, cams, labels=('loader', 'training process CPU, ms per sample'))
    if ceiling:
        print(
            "\nthe host's ceiling: independent processes, each loading one slot stream of "
            f'the sampler ({args.batches} samples each), no data loader'
        )
        print_rates(ceiling, cams, first='processes')
    if strides:
        print(f"\none camera's mp4 at {args.size[0]}x{args.size[1]}, {args.reads} reads per stride")
        print('| frames between reads | ms per frame read |')
        print('|---:|---:|')
        for stride, cost in strides:
            print(f'| {stride} | {cost:.1f} |')


if __name__ == '__main__':
    run_tool('benchmark_data', main)
