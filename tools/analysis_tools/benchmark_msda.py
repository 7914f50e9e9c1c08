"""Benchmark the MSDA operator: compiled kernels against the grid_sample reference.

Prints a markdown table of forward and backward times (median of CUDA-event timings of
calls queued back to back after warm-up, the GPU's time; inputs rotated so that nothing
stays in L2) for fp32, fp16 and bf16 at several camera counts, the achieved gather
bandwidth, and the device-to-device copy bandwidth measured in the same run as the
ceiling. The backward is timed in every way the feature gradient can be summed
(``set_msda_feature_gradient``): by destination, with atomics into an fp32 buffer, and for
fp16 and bf16 with atomics in their own format. The default shape is one sample of the
960x544 configs (C=256, G=8); a model's training shape is given with ``--batch``,
``--image``, ``--channels`` and ``--groups``.

    python tools/analysis_tools/benchmark_msda.py [--cams 6 10 20] [--anchors 900] [--spread 0.05]
    python tools/analysis_tools/benchmark_msda.py --cams 6 --batch 16 --image 272 480 \
        --channels 96 --groups 4 --anchors 400            # the small config's training step
"""

import argparse
import statistics

import torch

from mmsparse4d.ops import (
    MSDA_FEATURE_GRADIENTS,
    camera_level_shapes,
    clustered_locations,
    default_msda_feature_gradient,
    deformable_aggregation,
    deformable_aggregation_reference,
    msda_feature_gradient_mode,
    random_deformable_aggregation_inputs,
)
from mmsparse4d.utils.input_error import InputError, run_tool

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def time_ms(function, input_sets, repeats, warmup=5, queued=True):
    """Median milliseconds of function(inputs) on the GPU, rotating through input_sets.

    Queued (the default), the calls are issued back to back, each between two CUDA events,
    and synchronised once at the end: the host's dispatch of a call overlaps the GPU's work
    on the one before, so a call's time is the GPU's. Synchronised after each call
    (``queued=False``), a call's time also holds its launch from Python (the operator's
    dispatch and allocations), which the GPU waits for.
    """
    for i in range(warmup):
        function(input_sets[i % len(input_sets)])
    torch.cuda.synchronize()
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(repeats)
    ]
    for i, (start, end) in enumerate(events):
        start.record()
        function(input_sets[i % len(input_sets)])
        end.record()
        if not queued:
            end.synchronize()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) for start, end in events)


def copy_bandwidth_gbs(repeats):
    """Device-to-device copy bandwidth (read + write bytes per second) of a 1 GiB buffer."""
    source = torch.empty(1 << 28, dtype=torch.float32, device='cuda').uniform_()
    target = torch.empty_like(source)
    ms = time_ms(lambda _: target.copy_(source), [None], repeats)
    return 2 * source.numel() * 4 / ms / 1e6


def gathered_bytes(inputs):
    """Bytes the kernel must read and write: inside-map corners x channels, plus the rest."""
    features, shape, start, location, weights = inputs
    channels = features.shape[2]
    inside = ((location > 0) & (location < 1)).all(-1)  # [B, A, P, N]
    corners = 0
    for level in range(shape.shape[1]):
        height, width = shape[:, level, 0].double(), shape[:, level, 1].double()
        h = location[..., 1].double() * height - 0.5
        w = location[..., 0].double() * width - 0.5
        h0, w0 = h.floor(), w.floor()
        for dh in (0, 1):
            for dw in (0, 1):
                ok = (h0 + dh >= 0) & (h0 + dh < height) & (w0 + dw >= 0) & (w0 + dw < width)
                corners += int((ok & inside).sum())
    element = features.element_size()
    other = location.numel() * element + weights.numel() * element
    output = location.shape[0] * location.shape[1] * channels * element
    return corners * channels * element + other + output


def benchmark(
    cams_list,
    anchors,
    repeats,
    input_sets,
    with_reference,
    spread=None,
    batch=1,
    image_hw=(544, 960),
    channels=256,
    groups=8,
    queued=True,
):
    rows = []
    camera = camera_level_shapes(tuple(image_hw))
    for cams in cams_list:
        for name, dtype in DTYPES.items():
            generator = torch.Generator(device='cuda').manual_seed(cams)
            sets = [
                random_deformable_aggregation_inputs(
                    batch,
                    [camera] * cams,
                    anchors,
                    13,
                    groups,
                    channels,
                    dtype=dtype,
                    device='cuda',
                    inside_fraction=0.44,
                    generator=generator,
                )
                for _ in range(input_sets)
            ]
            if spread is not None:
                sets = [
                    (
                        *inputs[:3],
                        clustered_locations(inputs[3], spread, generator, 0.44),
                        inputs[4],
                    )
                    for inputs in sets
                ]
            forward = time_ms(lambda x: deformable_aggregation(*x), sets, repeats, queued=queued)
            grad_sets = []
            for features, shape, start, location, weights in sets:
                leaves = [t.detach().requires_grad_(True) for t in (features, location, weights)]
                output = deformable_aggregation(leaves[0], shape, start, leaves[1], leaves[2])
                grad_sets.append((output, leaves, torch.randn_like(output)))

            def backward(item):
                output, leaves, grad = item
                torch.autograd.grad(output, leaves, grad, retain_graph=True)

            backward_ms = {}
            for mode in MSDA_FEATURE_GRADIENTS:
                if mode == 'atomic_own_format' and dtype == torch.float32:
                    continue  # fp32's own format is its accumulation type
                with msda_feature_gradient_mode(mode):
                    backward_ms[mode] = time_ms(backward, grad_sets, repeats, queued=queued)
            reference = (
                time_ms(lambda x: deformable_aggregation_reference(*x), sets, max(3, repeats // 10))
                if with_reference
                else float('nan')
            )
            gbs = gathered_bytes(sets[0]) / forward / 1e6
            rows.append((cams, name, forward, backward_ms, reference, gbs))
            del sets, grad_sets
            torch.cuda.empty_cache()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cams', type=int, nargs='+', default=[6, 10, 20])
    parser.add_argument('--anchors', type=int, default=900)
    parser.add_argument('--repeats', type=int, default=100)
    parser.add_argument('--input-sets', type=int, default=2, help='rotated to defeat L2')
    parser.add_argument('--no-reference', action='store_true')
    parser.add_argument(
        '--spread',
        type=float,
        default=None,
        help="each anchor's points within this fraction of the image, as a box's key points "
        '(default: uniformly random locations)',
    )
    parser.add_argument('--batch', type=int, default=1, help='samples per call')
    parser.add_argument(
        '--image', type=int, nargs=2, default=[544, 960], metavar=('H', 'W'), help='pixels'
    )
    parser.add_argument('--channels', type=int, default=256, help='feature channels C')
    parser.add_argument('--groups', type=int, default=8, help='weight groups G (divides C)')
    parser.add_argument(
        '--synchronised',
        action='store_true',
        help="wait for each call before the next: its time then holds Python's launch too "
        "(default: calls queued, the GPU's time)",
    )
    args = parser.parse_args(argv)
    if min(args.cams) < 1 or args.anchors < 1 or args.repeats < 1 or args.input_sets < 1:
        raise InputError('--cams, --anchors, --repeats and --input-sets must be >= 1')
    if min(args.batch, *args.image, args.channels, args.groups) < 1:
        raise InputError('--batch, --image, --channels and --groups must be >= 1')
    if args.channels % args.groups:
        raise InputError(f'--groups {args.groups} must divide --channels {args.channels}')
    if args.spread is not None and not 0 < args.spread <= 1:
        raise InputError(f'--spread must be in (0, 1], got {args.spread}')
    if not torch.cuda.is_available():
        raise InputError('needs a CUDA device, and torch sees none')
    copy = copy_bandwidth_gbs(args.repeats)
    rows = benchmark(
        args.cams,
        args.anchors,
        args.repeats,
        args.input_sets,
        not args.no_reference,
        args.spread,
        args.batch,
        args.image,
        args.channels,
        args.groups,
        queued=not args.synchronised,
    )
    where = (
        'locations uniformly random'
        if args.spread is None
        else f"each anchor's points within {args.spread} of the image"
    )
    print(
        f'\ndevice: {torch.cuda.get_device_name()}, torch {torch.__version__}, '
        f'B={args.batch}, A={args.anchors}, P=13, G={args.groups}, C={args.channels}, '
        f'{args.image[1]}x{args.image[0]} strides 4/8/16/32, '
        f'{where}, 44% inside, '
        + ('each call synchronised' if args.synchronised else 'calls queued (GPU time)')
    )
    print(f'device-to-device copy bandwidth: {copy:.0f} GB/s')
    print(
        '*: the default for the dtype and channels (mmsparse4d.ops.default_msda_feature_gradient)\n'
    )
    print(
        '| cams | dtype | forward ms | backward ms: by destination | atomic, fp32 sums | '
        'atomic, own-format sums | reference fwd ms | speed-up | forward GB/s | % of copy |'
    )
    print('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for cams, name, forward, backward, reference, gbs in rows:
        default = default_msda_feature_gradient(DTYPES[name], args.channels, args.groups)
        cells = ' | '.join(
            '-'
            if backward.get(mode) is None
            else f'{backward[mode]:.3f}' + ('*' if mode == default else '')
            for mode in MSDA_FEATURE_GRADIENTS
        )
        print(
            f'| {cams} | {name} | {forward:.4f} | {cells} | '
            f'{reference:.3f} | {reference / forward:.0f}x | {gbs:.0f} | {100 * gbs / copy:.0f}% |'
        )


if __name__ == '__main__':
    run_tool('benchmark_msda', main)
