"""Profile training steps of a config on random inputs (no data needed).

    python tools/analysis_tools/profile_train_step.py CONFIG [--device cuda] [--amp bf16]
        [--batch 4] [--cams 6] [--size 480 272] [--boxes 12] [--steps 10]

Prints the time per step, then the functions with the most own time (cProfile), and, on
CUDA, torch.profiler's table of CUDA and CPU time per operator.
"""

import argparse
import cProfile
import io
import pstats
import time

import torch

from mmsparse4d.testing import build_tiny, random_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', choices=['bf16', 'fp16'])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument('--size', type=int, nargs=2, default=(480, 272))
    parser.add_argument('--boxes', type=int, default=12)
    parser.add_argument('--steps', type=int, default=10)
    args = parser.parse_args()
    model = build_tiny(args.config).to(args.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [random_batch(args.batch, args.cams, tuple(args.size), args.boxes, frame=f)
               for f in range(args.steps + 2)]  # fmt: skip
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(args.amp)

    def step(data):
        data = model.data_preprocessor(data, training=True)
        with torch.autocast(args.device.split(':')[0], dtype=dtype, enabled=dtype is not None):
            losses = model(**data, mode='loss')
        sum(losses.values()).backward()
        optimizer.step()
        optimizer.zero_grad()

    def sync():
        if args.device.startswith('cuda'):
            torch.cuda.synchronize()

    step(batches[0])
    step(batches[1])
    sync()
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    for data in batches[2:]:
        step(data)
    sync()
    profile.disable()
    print(f'{(time.perf_counter() - start) / args.steps * 1000:.1f} ms per step '
          f'({args.batch} x {args.cams} cameras, {args.size[0]}x{args.size[1]}, '
          f'{args.device}, {args.amp or "fp32"})')  # fmt: skip
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats('tottime').print_stats(25)
    print(text.getvalue())
    if args.device.startswith('cuda'):
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        ) as prof:
            for data in batches[2:5]:
                step(data)
            sync()
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))
        print(prof.key_averages().table(sort_by='self_cuda_time_total', row_limit=15))


if __name__ == '__main__':
    main()
