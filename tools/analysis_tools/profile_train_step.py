"""Profile training steps of a config on random inputs (no data needed) or real batches.

    python tools/analysis_tools/profile_train_step.py CONFIG [--device cuda] [--amp bf16]
        [--batch 4] [--cams 6] [--size 480 272] [--boxes 12] [--steps 10] [--real-data]
        [--compile [--compile-backend B] [--compile-mode M]] [--cfg-options k=v ...]
        [--msda-feature-gradient by_destination|atomic_float32|atomic_own_format]

Prints the time per step, then the functions with the most own time (cProfile), and, on
CUDA, torch.profiler's table of CUDA and CPU time per operator with, per step, the GPU's
busy time (and its share of the step timed again) and the counts of kernel launches, host
synchronisations and copies (those from pageable host memory apart); on the CPU, the tensor
operations per step that compute (``mmsparse4d/testing/op_counts.py``: each at least one
kernel launch on a GPU). The step time is taken before and without cProfile, twice: first
over batches whose shapes the step has not seen (as in training, where real batches vary
in cameras, boxes and denoising widths), then over the same batches again. Last, where
the host waits for the GPU, by source line (``mmsparse4d/testing/host_syncs.py``): exact on
CUDA (torch's sync debug mode), on the CPU the calls that would wait there.

``--real-data`` builds the config's own model, optimizer wrapper (its constructor, clipping
and, with --amp, mixed precision) and training dataloader (``--batch`` samples per step),
loads the batches first and then times the steps alone: the model's share of a real
training step, data loading excluded; then as many steps on the batches that follow, each
taken from the running loader as the training loop takes it: the step with the loader's
workers beside it, and the wait for each batch.

``--compile`` ends with what the compiler made of the regions over all the steps run: the
graphs it traced (a region is traced again for each new set of input shapes, and each
graph is a CUDA graph of its own under ``--compile-mode reduce-overhead``) and the graph
breaks. ``--compile-backend eager`` traces without generating code, which is fast and
shows both on any machine.
"""

import argparse
import cProfile
import io
import pstats
import time
from collections import Counter

import torch

from mmsparse4d.deploy.cuda_graph import PRECISIONS
from mmsparse4d.engine.hooks import compile_regions
from mmsparse4d.ops import MSDA_FEATURE_GRADIENTS, set_msda_feature_gradient
from mmsparse4d.testing.host_syncs import cpu_sync_candidates, cuda_sync_sites, sync_table
from mmsparse4d.testing.op_counts import computing_operations, operation_table
from mmsparse4d.testing.train_inputs import (
    add_training_input_arguments,
    config_training_inputs,
    random_training_inputs,
)
from mmsparse4d.utils.devices import check_device
from mmsparse4d.utils.input_error import InputError, run_tool

# The host's calls that start kernels (torch.profiler's names for them); a graph replay is
# one launch of all the graph's kernels.
LAUNCHES = ('cudaLaunchKernel', 'cuLaunchKernelEx', 'cudaLaunchKernelExC', 'cudaGraphLaunch')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', choices=['bf16', 'fp16'])
    parser.add_argument('--steps', type=int, default=10)
    add_training_input_arguments(parser)
    parser.add_argument(
        '--compile',
        action='store_true',
        help='compile the regions tools/train.py --compile compiles '
        '(compiled in the warm-up steps)',
    )
    parser.add_argument(
        '--compile-backend', default='inductor', help='torch.compile backend for --compile'
    )
    parser.add_argument(
        '--compile-mode', help="torch.compile mode for --compile, e.g. 'reduce-overhead'"
    )
    parser.add_argument(
        '--msda-feature-gradient',
        choices=MSDA_FEATURE_GRADIENTS,
        help="how the aggregation's CUDA backward sums the feature gradient "
        '(tools/train.py --msda-feature-gradient; default: per dtype and channels)',
    )
    args = parser.parse_args(argv)
    set_msda_feature_gradient(args.msda_feature_gradient)
    if args.compile_mode and not args.compile:
        raise InputError('--compile-mode is for --compile')
    if args.steps < 1 or args.batch < 1:
        raise InputError(f'--steps and --batch must be >= 1, got {args.steps} and {args.batch}')
    check_device(args.device)
    loader = None
    if args.real_data:
        step, batches, model, loader = real_data_steps(args)
    else:
        step, batches, model = random_input_steps(args)

    def sync():
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()

    def warm_up():
        # Every pass replays the same frames from the start of their sequences (a replay
        # straight after the last frame would go back in time, and the bank would drop its
        # cache): the timed, cProfile and torch.profiler passes see the same temporal state.
        model.head.reset_temporal_state()
        step(batches[0])
        step(batches[1])
        sync()

    def timed_pass() -> float:
        """ms per step over batches[2:], after the warm-up."""
        warm_up()
        start = time.perf_counter()
        for data in batches[2:]:
            step(data)
        sync()
        return (time.perf_counter() - start) / args.steps * 1000

    # Timed without cProfile (its per-call hooks slow Python-heavy code), then profiled.
    # Twice: real batches bring new shapes (cameras, boxes, denoising widths) that cost
    # extra the first time they are seen (the library's per-shape set-up, the allocator),
    # as most batches of a training run do; the second pass is the step without it.
    first_ms = timed_pass()
    step_ms = timed_pass()
    shape = (
        'real batches' if args.real_data else f'{args.cams} cameras, {args.size[0]}x{args.size[1]}'
    )
    peak = ''
    if args.device.startswith('cuda'):
        peak = f', peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB'
    print(
        f'{first_ms:.1f} ms per step, {args.batch / first_ms * 1000:.1f} samples/s '
        f'({args.batch} samples, {shape}, {args.device}, {args.amp or "fp32"}{peak}); '
        f'{step_ms:.1f} ms per step over the same batches again (their shapes seen before)'
    )
    if args.msda_feature_gradient is not None:
        print(f'MSDA feature gradient: {args.msda_feature_gradient} (the CUDA backward)')
    if loader is not None:
        print(live_loader_line(step, loader, args.steps, sync))
    regions = [getattr(model, 'image_graphs', None)]
    regions += [
        getattr(model.head, name, None) for name in ('decoder_graphs', 'reid_graphs', 'loss_graphs')
    ]
    for region in regions:
        if region is not None:
            print(
                f'{region.name} as CUDA graphs: {region.num_graphs} input signatures captured, '
                f'{region.capture_seconds:.1f} s of capture (in the first warm-up steps)'
            )
    warm_up()
    profile = cProfile.Profile()
    profile.enable()
    for data in batches[2:]:
        step(data)
    sync()
    profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats('tottime').print_stats(25)
    print(text.getvalue())
    if args.device.startswith('cuda'):
        warm_up()
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        ) as prof:
            for data in batches[2:5]:
                step(data)
            sync()
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))
        print(prof.key_averages().table(sort_by='self_cuda_time_total', row_limit=15))
        counts = Counter(event.name for event in prof.events())
        on_gpu = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        kernels, busy_us = len(on_gpu), sum(e.device_time for e in on_gpu)
        launches = sum(counts[name] for name in LAUNCHES)
        print(
            f'per step: {kernels / 3:.0f} kernels ({busy_us / 3000:.1f} ms of GPU time: '
            f'{busy_us / 30 / step_ms:.0f}% GPU-busy over the step timed again), '
            f'{launches / 3:.0f} launches, '
            f'{counts["cudaStreamSynchronize"] / 3:.0f} stream synchronisations, '
            f'{counts["cudaMemcpyAsync"] / 3:.0f} copies '
            f'({counts["Memcpy HtoD (Pageable -> Device)"] / 3:.0f} from pageable host memory, '
            'each of which can wait for the device)'
        )
    else:
        warm_up()
        with computing_operations() as operations:
            for data in batches[2:]:
                step(data)
        print('\ntensor operations (on a GPU, each at least one kernel launch)')
        print(operation_table(operations, args.steps))
    warm_up()
    on_cuda = args.device.startswith('cuda')
    with cuda_sync_sites() if on_cuda else cpu_sync_candidates() as sites:
        for data in batches[2:]:
            step(data)
    sync()
    print(
        '\nwhere the host waits for the GPU'
        + ('' if on_cuda else ' (on CUDA; found on the CPU, an estimate)')
    )
    print(sync_table(sites, args.steps))
    if args.compile:
        print(compiled_graphs_line())


def live_loader_line(step, loader, steps: int, sync) -> str:
    """Steps on the batches that follow, each taken from the running loader as the
    training loop takes it (its workers load the next batches meanwhile): the step with
    the loader's processes and threads beside it, and the wait for each batch."""
    waited = done = 0
    start = time.perf_counter()
    for _ in range(steps):
        asked = time.perf_counter()
        try:
            data = next(loader)
        except StopIteration:
            break
        waited += time.perf_counter() - asked
        step(data)
        done += 1
    sync()
    if not done:
        return 'the loader had no batch left for steps taken from it'
    total_ms = (time.perf_counter() - start) / done * 1000
    ran_out = f' (the loader ran out after {done})' if done < steps else ''
    return (
        f'{total_ms:.1f} ms per step over {done} further batches taken from the running '
        f'loader{ran_out}, {waited / done * 1000:.1f} ms of it waiting for a batch'
    )


def compiled_graphs_line() -> str:
    """The graphs the compiler traced and its graph breaks, over everything run."""
    from torch._dynamo.utils import counters

    graphs = counters['stats']['unique_graphs']
    breaks = sum(counters['graph_break'].values())
    reasons = '; '.join(f'{count} x {reason}' for reason, count in counters['graph_break'].items())
    return (
        f'\ncompiled regions: {graphs} graphs traced (one per region and set of input '
        f'shapes), {breaks} graph breaks' + (f' ({reasons})' if breaks else '')
    )


def random_input_steps(args):
    """A step on random inputs of the given shape, plain fused AdamW (the configs'); and the
    inputs."""
    model, batches = random_training_inputs(
        args.config,
        args.device,
        args.batch,
        args.cams,
        args.size,
        args.boxes,
        args.steps + 2,
        args.cfg_options,
    )
    if args.compile:
        compile_regions(model, backend=args.compile_backend, mode=args.compile_mode)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    dtype = PRECISIONS[args.amp or 'fp32']

    def step(data):
        data = model.data_preprocessor(data, training=True)
        with torch.autocast(args.device.split(':')[0], dtype=dtype, enabled=dtype is not None):
            losses = model(**data, mode='loss')
        sum(losses.values()).backward()
        optimizer.step()
        optimizer.zero_grad()

    return step, batches, model


def real_data_steps(args):
    """The config's own training step (model, optimizer wrapper, data), real batches, and
    the loader's iterator running on after them."""
    model, wrapper, batches, loader = config_training_inputs(
        args.config, args.device, args.batch, args.steps + 2, args.amp, args.cfg_options
    )
    if args.compile:
        compile_regions(model, backend=args.compile_backend, mode=args.compile_mode)

    def step(data):
        with wrapper.optim_context(model):
            data = model.data_preprocessor(data, training=True)
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        wrapper.update_params(loss)

    return step, batches, model, loader


if __name__ == '__main__':
    run_tool('profile_train_step', main)
