"""Whole-model tracking speed: time per frame, per-stage breakdown, cameras per FPS target.

    python tools/benchmark.py CONFIG [--checkpoint CKPT] [--cams 1 4 8 16] [--precision fp32 bf16]
        [--frames 50] [--warmup 10] [--size W H] [--channels-last] [--fold-bn]
        [--compile [BACKEND] [--compile-mode M]] [--cudnn-benchmark]
        [--cuda-graph [--overlap-copy] [--pipeline] [--compile-frame [BACKEND]]]
        [--device cuda] [--json out.json]
        [--cfg-options k=v ...]

Per precision and camera count: the median and 90th percentile of the frame time over
``--frames`` frames after ``--warmup`` (CUDA events on a GPU), the frame rate and the peak
device memory; the per-stage breakdown at the largest camera count; and, in the model card's
form, the largest camera count that sustains 30, 15 and 10 FPS (the largest measured count,
and in brackets what a straight line through the measurements predicts). Without
``--checkpoint`` the weights are random (timing does not depend on them); the anchors are
random around the origin. On a CPU this is a smoke run (the test suite runs it).

``--cuda-graph`` replays the whole network of a frame (image normalisation, backbone, neck,
head) as one captured CUDA graph, with uint8 images from pinned host memory and the
tracking around it (``Sparse4DTracker`` on its ``cudagraph`` back end: the instance bank
and ids on the device, the decoding on the host); its breakdown is the graph and the steps
around it (the eager run gives the per-operation one). With ``--compile`` as well, the
compiled backbone and neck are recorded into the graph (compiled in the warm-up calls);
``--compile-frame`` compiles the whole frame network, head included, as one graph instead.
``--pipeline`` decodes each frame on the host while the device runs the next one (the bank's
cache and ids stay on the device and never wait for it): results come one frame late and
the time reported is the period between frame starts, i.e. the throughput.
"""

import argparse
import json
from pathlib import Path

import torch
from mmengine.config import Config, DictAction

# Only what the checks need here: the model and the benchmark load after them (seconds).
from mmsparse4d.deploy.names import COMPILE_MODES, PRECISION_NAMES
from mmsparse4d.engine.cfg_options import check_cfg_options
from mmsparse4d.utils.devices import check_device
from mmsparse4d.utils.input_error import InputError, run_tool
from mmsparse4d.utils.output_paths import check_output_file

FPS_TARGETS = (30, 15, 10)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights (default: random)')
    parser.add_argument('--cams', type=int, nargs='+', default=[1, 4, 8, 16])
    parser.add_argument('--precision', nargs='+', default=['fp32'], choices=sorted(PRECISION_NAMES))
    parser.add_argument('--frames', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        metavar=('W', 'H'),
        help="image size (default: the config's image_size)",
    )
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--fold-bn', action='store_true', help='fold batch norms into convs')
    parser.add_argument(
        '--compile',
        nargs='?',
        const='inductor',
        metavar='BACKEND',
        help='torch.compile the backbone and neck (default backend: inductor)',
    )
    parser.add_argument(
        '--cuda-graph',
        action='store_true',
        help="replay each frame's network as a captured CUDA graph",
    )
    parser.add_argument(
        '--overlap-copy',
        action='store_true',
        help="with --cuda-graph: copy the next frame's images on a second "
        'stream while this frame runs',
    )
    parser.add_argument(
        '--compile-frame',
        nargs='?',
        const='inductor',
        metavar='BACKEND',
        help='with --cuda-graph: torch.compile the whole frame network, head included, as one '
        "graph (instead of --compile's backbone and neck)",
    )
    parser.add_argument(
        '--pipeline',
        action='store_true',
        help='with --cuda-graph: decode each frame on the host while the next '
        'frame runs (results one frame late; the time is the period)',
    )
    parser.add_argument(
        '--compile-mode',
        choices=COMPILE_MODES,
        default='default',
        help="torch.compile mode for --compile ('max-autotune-no-cudagraphs' tunes the "
        "convolutions' kernels; modes with CUDA graphs of their own would nest in --cuda-graph)",
    )
    parser.add_argument(
        '--cudnn-benchmark',
        action='store_true',
        help='let cuDNN time its convolution algorithms per shape (torch.backends.cudnn.benchmark)',
    )
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--json', type=Path, help='write every number to this file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config settings, e.g. model.head.deformable_model.max_num_cams=64',
    )
    return parser.parse_args(argv)


def check_arguments(args) -> None:
    """Refuse files that are missing and flags that do not go together, before any work."""
    if not Path(args.config).is_file():
        raise InputError('config not found', path=args.config)
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise InputError('checkpoint not found', path=args.checkpoint)
    if min(args.cams) < 1 or args.frames < 1 or args.warmup < 0:
        raise InputError(
            f'--cams must be >= 1, --frames >= 1 and --warmup >= 0, got --cams '
            f'{" ".join(map(str, args.cams))} --frames {args.frames} --warmup {args.warmup}'
        )
    if args.size is not None and min(args.size) < 16:
        raise InputError(f'--size {args.size[0]} {args.size[1]}: both must be >= 16 pixels')
    if args.json is not None:
        check_output_file(args.json, '--json')
    check_device(args.device)
    for flag in ('overlap_copy', 'pipeline', 'compile_frame'):
        if getattr(args, flag) and not args.cuda_graph:
            raise InputError(f'--{flag.replace("_", "-")} is for --cuda-graph; add --cuda-graph')
    if args.compile_mode != 'default' and not (args.compile or args.compile_frame):
        raise InputError('--compile-mode is for --compile or --compile-frame; add one of them')
    if args.compile and args.compile_frame:
        raise InputError(
            '--compile-frame compiles the backbone and neck as well; give it without --compile'
        )
    if args.cuda_graph and not args.device.startswith('cuda'):
        raise InputError(f'--cuda-graph needs a CUDA device, got --device {args.device}')


def main(argv=None) -> dict:
    args = parse_args(argv)
    check_arguments(args)
    from mmsparse4d.deploy.frame_benchmark import (
        OVERLAPPED,
        benchmark_frames,
        benchmark_graph_frames,
        max_cameras,
        prepare_model,
    )
    from mmsparse4d.engine.checkpoint_settings import load_fitting_checkpoint
    from mmsparse4d.testing import build_untrained_model

    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(check_cfg_options(cfg, args.cfg_options))
    size = tuple(args.size) if args.size else tuple(cfg.get('image_size', (960, 544)))
    model = build_untrained_model(cfg)
    limit = model.head.max_num_cams
    if max(args.cams) > limit:
        raise InputError(
            f'--cams {max(args.cams)}: the model takes at most {limit} cameras; raise it with '
            f'--cfg-options model.head.deformable_model.max_num_cams={max(args.cams)}'
        )
    if args.checkpoint:
        load_fitting_checkpoint(model, args.checkpoint, cfg, 'benchmark')
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    model = prepare_model(
        model.to(args.device), args.channels_last, args.fold_bn, args.compile, args.compile_mode
    )
    gpu = torch.cuda.get_device_name(args.device) if args.device.startswith('cuda') else None
    compiled = (
        f', backbone and neck compiled ({args.compile}, {args.compile_mode})'
        if args.compile
        else ''
    )
    if args.compile_frame:
        compiled = f', whole frame compiled ({args.compile_frame}, {args.compile_mode})'
    print(
        f'{Path(args.config).stem}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M '
        f'parameters, {size[0]}x{size[1]} images, {args.device}{f" ({gpu})" if gpu else ""}'
        f'{", channels-last" if args.channels_last else ""}'
        f'{", folded batch norms" if args.fold_bn else ""}'
        f'{compiled}'
        f'{", cuDNN autotuned" if args.cudnn_benchmark else ""}'
        f'{", one CUDA graph per frame" if args.cuda_graph else ""}'
        f'{", next frame copied on a second stream" if args.overlap_copy else ""}'
        f'{", host decoding overlapped with the next frame (period)" if args.pipeline else ""}; '
        f'median of {args.frames} frames '
        f'after {args.warmup} warm-up frames'
    )
    report = {
        'config': args.config,
        'size': size,
        'device': args.device,
        'cuda_graph': args.cuda_graph,
        'pipeline': args.pipeline,
        'compile': args.compile,
        'compile_frame': args.compile_frame,
        'compile_mode': args.compile_mode,
        'cudnn_benchmark': args.cudnn_benchmark,
        'torch': torch.__version__,
        'runs': {},
    }
    if gpu:
        report['gpu'] = gpu
    print('\n| precision | cameras | median ms | p90 ms | FPS | peak MiB |')
    print('|---|---:|---:|---:|---:|---:|')
    all_times = {}
    for precision in args.precision:
        all_times[precision] = {}
        for cams in sorted(args.cams):
            if args.cuda_graph:
                times = benchmark_graph_frames(
                    model,
                    cams,
                    size,
                    args.frames,
                    args.warmup,
                    precision,
                    args.channels_last,
                    overlap_copy=args.overlap_copy,
                    pipeline=args.pipeline,
                    compile_frame=args.compile_frame,
                    compile_mode=args.compile_mode,
                )
            else:
                times = benchmark_frames(
                    model, cams, size, args.frames, args.warmup, precision, args.channels_last
                )
            all_times[precision][cams] = times
            memory = f'{times.peak_memory_mib:.0f}' if times.peak_memory_mib is not None else '-'
            print(
                f'| {precision} | {cams} | {times.median_ms:.2f} | '
                f'{times.percentile_ms(0.9):.2f} | {1000 / times.median_ms:.1f} | {memory} |',
                flush=True,
            )
            report['runs'][f'{precision}/{cams}'] = {
                'median_ms': times.median_ms,
                'p90_ms': times.percentile_ms(0.9),
                'peak_memory_mib': times.peak_memory_mib,
                'stages_ms': times.stage_medians(),
            }
    largest = max(args.cams)
    for precision in args.precision:
        stages = all_times[precision][largest].stage_medians()
        total = all_times[precision][largest].median_ms
        print(
            f'\nstages at {largest} cameras, {precision} (median ms per frame; the rest is '
            'the Python between the stages)'
        )
        print('| stage | ms | share |\n|---|---:|---:|')
        # Overlapped stages (the pipeline's host decoding) run beside the others: not summed.
        serial = {name: value for name, value in stages.items() if OVERLAPPED not in name}
        for name, value in serial.items():
            print(f'| {name} | {value:.3f} | {100 * value / total:.1f}% |')
        rest = total - sum(serial.values())
        print(f'| rest | {rest:.3f} | {100 * rest / total:.1f}% |')
        for name, value in stages.items():
            if name not in serial:
                print(f'| {name} | {value:.3f} | beside the above |')
    print('\nlargest camera count sustaining the frame rate (measured [line fit])')
    print('| precision | ' + ' | '.join(f'{fps} FPS' for fps in FPS_TARGETS) + ' |')
    print('|---|' + '---:|' * len(FPS_TARGETS))
    report['max_cameras'] = {}
    for precision in args.precision:
        cells = []
        for fps in FPS_TARGETS:
            measured, fitted = max_cameras(all_times[precision], fps)
            report['max_cameras'][f'{precision}/{fps}'] = {'measured': measured, 'fitted': fitted}
            cells.append(
                f'{measured if measured is not None else "<" + str(min(args.cams))}'
                f'{f" [{fitted:.0f}]" if fitted is not None else ""}'
            )
        print(f'| {precision} | ' + ' | '.join(cells) + ' |')
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f'\nwrote {args.json}')
    return report


if __name__ == '__main__':
    run_tool('benchmark', main)
