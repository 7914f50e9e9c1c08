"""Training throughput on several GPUs of one host against one: samples/s per GPU, the
scaling efficiency, and where a data-parallel step's extra time goes.

    python tools/analysis_tools/benchmark_scaling.py CONFIG --gpus 1 2 [4 8] [--device cuda]
        [--amp bf16] [--batch 8] [--cams 6] [--size 480 272] [--boxes 12] [--steps 20]
        [--cfg-options k=v ...]

For each count in ``--gpus`` it starts that many processes with torchrun (one per GPU; with
``--device cpu`` processes on the CPU with gloo), each training the config's model on its
own random batches of ``--batch`` samples (the per-GPU batch: N processes train N times the
samples of one per step, as a data-parallel run at N times the global batch). One process
trains the model as ``tools/train.py`` does without a launcher (no wrapper); several wrap it
in ``DistributedDataParallel`` as ``tools/dist_train.sh`` does, and time ``--steps`` steps
as training runs them (the gradients averaged over the processes each step) and inside
``no_sync`` (the averaging left out), each way twice, interleaved, the better pass taken. A
step's time is the slowest process's.

Prints per count: ms per step, samples/s in all and per GPU, the efficiency (samples/s per
GPU against one process's), and the step split into one process's step, what running N
processes side by side adds (``no_sync`` against one process: the host's cores, memory and
PCIe shared, and the DDP wrapper's own work) and the averaging's exposed time (the step
against ``no_sync``: all-reduce not hidden behind the backward). After the averaged steps
every process must hold the same parameters (each trained on other batches), which the table
says. The data loader is not part of it (``benchmark_data.py`` times that). Each process
runs with ``OMP_NUM_THREADS=1`` unless the environment sets it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmsparse4d.utils.input_error import InputError, run_tool

WARMUP_STEPS = 2


def parse_args(argv=None):
    from mmsparse4d.testing.train_inputs import add_training_input_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--gpus', type=int, nargs='+', default=[1, 2], help='process counts')
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    # bf16 (the recipes' precision) needs no loss scaler; fp16 would time a step without one.
    parser.add_argument('--amp', choices=['bf16'])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument(
        '--timeout', type=int, default=1800, help='seconds a count may take (a hung collective)'
    )
    parser.add_argument('--worker', help=argparse.SUPPRESS)  # a process's JSON result file
    add_training_input_arguments(parser)
    args = parser.parse_args(argv)
    if args.real_data:
        raise InputError('--real-data: this benchmark trains on random batches only')
    if args.steps < 1 or args.batch < 1:
        raise InputError(f'--steps and --batch must be >= 1, got {args.steps} and {args.batch}')
    if any(count < 1 for count in args.gpus) or len(set(args.gpus)) != len(args.gpus):
        raise InputError(f'--gpus: distinct counts >= 1, got {" ".join(map(str, args.gpus))}')
    if not Path(args.config).is_file():
        raise InputError('config not found', args.config)
    return args


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    available = available_processes(args.device)
    if max(args.gpus) > available:
        raise InputError(
            f'--gpus {max(args.gpus)}: this machine has {available} '
            f'{"CUDA devices" if args.device == "cuda" else "CPU cores"}'
        )
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for count in sorted(args.gpus):
            out = Path(folder) / f'{count}.json'
            launch(worker_argv(argv, out), count, args.timeout)
            results.append(json.loads(out.read_text()))
    print(scaling_table(results, args.batch))


def available_processes(device: str) -> int:
    """How many processes ``device`` can give one each: CUDA devices or CPU cores."""
    if device == 'cuda':
        import torch

        return torch.cuda.device_count()
    return os.cpu_count() or 1


def worker_argv(argv: list[str], out: Path) -> list[str]:
    """The launcher's arguments for a worker: ``--gpus`` and its counts out, ``--worker``
    in."""
    kept, skipping = [], False
    for item in argv:
        if item == '--gpus':
            skipping = True
            continue
        if skipping and not item.startswith('--'):
            continue
        skipping = False
        kept.append(item)
    return [*kept, '--worker', str(out)]


def launch(argv: list[str], count: int, timeout: int) -> None:
    """Run the workers under torchrun on one host. A run that fails or outlasts ``timeout``
    ends the tool with exit status 1 and a message naming the count (rank 0's own lines
    for a failure), not a traceback of the launcher.

    The rendezvous is on the loopback address, as ``tools/dist_train.sh``'s: torchrun's
    ``--standalone`` gives the workers this host's fully qualified name, which on a machine
    whose name resolves to an address it cannot reach leaves them waiting for each other
    until the timeout.
    """
    from mmsparse4d.utils.free_port import free_port

    processes = f'{count} process' + ('es' if count > 1 else '')
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    command = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--nnodes=1',
        '--master_addr=127.0.0.1',
        f'--master_port={free_port()}',
        f'--nproc_per_node={count}',
        str(Path(__file__).resolve()),
        *argv,
    ]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        try:
            stdout, stderr = run.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # torchrun, terminated, stops its workers (it starts each with setsid, so that
            # killing torchrun would leave them running); killed if it does not in a minute.
            run.terminate()
            try:
                run.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                run.kill()
                run.communicate()
            raise SystemExit(
                f'benchmark_scaling: {processes} did not finish in {timeout} s (--timeout)'
            ) from None
    if run.returncode != 0:
        # Rank 0's own lines (its traceback or one-line refusal), else torchrun's last ones.
        lines = (stdout + stderr).strip().splitlines()
        own = [line for line in lines if line.startswith('[rank0]:')] or lines
        tail = '\n'.join(own[-12:])
        raise SystemExit(f'benchmark_scaling: {processes} failed:\n{tail}')


def worker(args) -> None:
    """One process of a count: trains, times, checks the parameters, and (rank 0) writes
    the count's result to ``args.worker``."""
    import torch
    import torch.distributed as dist
    from mmengine.config import Config

    from mmsparse4d.deploy.cuda_graph import PRECISIONS
    from mmsparse4d.testing.train_inputs import config_depth_strides, random_training_inputs
    from mmsparse4d.utils.distributed_end import exit_distributed_process, wait_for_other_processes

    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    cfg = Config.fromfile(args.config)  # read once here; the model is built from the file
    cfg.merge_from_dict(args.cfg_options)
    local_rank = int(os.environ['LOCAL_RANK'])
    device = f'cuda:{local_rank}' if args.device == 'cuda' else 'cpu'
    if args.device == 'cuda':
        torch.cuda.set_device(local_rank)
    dist.init_process_group('nccl' if args.device == 'cuda' else 'gloo')
    torch.manual_seed(0)  # the same weights everywhere (DDP broadcasts rank 0's anyway)
    model, batches = random_training_inputs(
        args.config,
        device,
        args.batch,
        args.cams,
        args.size,
        args.boxes,
        args.steps + WARMUP_STEPS,
        args.cfg_options,
        seed=rank,  # each process its own batches
        # Every branch trains, as on real data (DDP wants each parameter's gradient).
        depth_strides=config_depth_strides(cfg),
    )
    inner, trained = model, model
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model,
            device_ids=[local_rank] if args.device == 'cuda' else None,
            broadcast_buffers=False,
            # As tools/train.py wraps it (mmengine's default wrapper settings).
            find_unused_parameters=find_unused_parameters(cfg),
        )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=args.device == 'cuda')
    dtype = PRECISIONS[args.amp or 'fp32']

    def step(data):
        data = inner.data_preprocessor(data, training=True)
        with torch.autocast(args.device, dtype=dtype, enabled=dtype is not None):
            losses = trained(**data, mode='loss')
        sum(losses.values()).backward()
        optimizer.step()
        optimizer.zero_grad()

    def timed_pass(averaged: bool) -> float:
        """ms per step over the batches after the warm-up, the slowest process's."""
        inner.head.reset_temporal_state()
        for data in batches[:WARMUP_STEPS]:
            step(data)
        synchronize(args.device)
        dist.barrier()
        start = time.perf_counter()
        if averaged or world == 1:
            for data in batches[WARMUP_STEPS:]:
                step(data)
        else:
            with trained.no_sync():
                for data in batches[WARMUP_STEPS:]:
                    step(data)
        synchronize(args.device)
        elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        if args.device == 'cuda':
            elapsed = elapsed.cuda()
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        return float(elapsed.item()) / args.steps * 1000

    step_ms = timed_pass(averaged=True)
    params_equal = same_parameters_everywhere(model, world)
    # The better of two passes each way, interleaved (so that the split's two times are
    # taken alike).
    local_ms = timed_pass(averaged=False) if world > 1 else step_ms
    step_ms = min(step_ms, timed_pass(averaged=True))
    if world > 1:
        local_ms = min(local_ms, timed_pass(averaged=False))
    if rank == 0:
        name = torch.cuda.get_device_name(local_rank) if args.device == 'cuda' else 'CPU'
        result = {
            'processes': world,
            'device': name,
            'step_ms': step_ms,
            'no_sync_ms': local_ms,
            'parameters_equal': params_equal,
        }
        Path(args.worker).write_text(json.dumps(result))
    # Not returning: freeing the DDP model could hang in the gloo group's teardown.
    wait_for_other_processes()
    exit_distributed_process()


def find_unused_parameters(cfg) -> bool:
    wrapper = cfg.get('model_wrapper_cfg') or {}
    return bool(wrapper.get('find_unused_parameters', cfg.get('find_unused_parameters', False)))


def synchronize(device: str) -> None:
    if device == 'cuda':
        import torch

        torch.cuda.synchronize()


def same_parameters_everywhere(model, world: int) -> bool:
    """Whether every process holds the same parameters, bit for bit (a checksum each)."""
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
        checksum = torch.stack([flat.sum(), flat.square().sum(), flat.abs().max()])
    gathered = [torch.empty_like(checksum) for _ in range(world)]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def scaling_table(results: list[dict], batch: int) -> str:
    """The counts' results as a table: throughput, efficiency against one process, the
    step split (one process, side by side, averaging)."""
    one = next((r for r in results if r['processes'] == 1), None)
    lines = [
        f'{results[0]["device"]}, {batch} samples per process and step',
        '| processes | ms per step | samples/s | per process | efficiency | one process '
        '| side by side | averaging | same parameters |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ]
    for r in results:
        per_process = batch / r['step_ms'] * 1000
        efficiency = side = averaging = base = ''
        if one is not None:
            efficiency = f'{per_process / (batch / one["step_ms"] * 1000):.0%}'
            base = f'{one["step_ms"]:.1f}'
            side = f'{r["no_sync_ms"] - one["step_ms"]:+.1f}'
        if r['processes'] > 1:
            averaging = f'{r["step_ms"] - r["no_sync_ms"]:+.1f}'
        same = 'yes' if r['parameters_equal'] else 'NO'
        if r['processes'] == 1:
            same, side = '-', ''
        lines.append(
            f'| {r["processes"]} | {r["step_ms"]:.1f} | {per_process * r["processes"]:.1f} '
            f'| {per_process:.1f} | {efficiency} | {base} | {side} | {averaging} | {same} |'
        )
    return '\n'.join(lines)


if __name__ == '__main__':
    run_tool('benchmark_scaling', main)
