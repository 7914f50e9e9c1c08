"""Training on P processes at batch B / P each against one process at batch B.

Data parallelism is only correct if it changes nothing but the split: every loss a model
averages must be averaged over the global batch, not each process's part, or the averaged
gradients weight the processes' samples by how many targets each happened to hold. This
runs the same steps both ways on the CPU (gloo, ``MMDistributedDataParallel`` as
``tools/dist_train.sh`` wraps the model) and returns each loss (one process, and the mean
over the processes) and every parameter's gradient.

What is random is made equal first, since the processes draw their own numbers: the
inputs are ``random_batch``'s, drawn once and split; dropout, the grid mask and the
camera-attention drop are off; denoising keeps one group of noise-free positive copies
(their padding to the batch's largest box count is exercised, their random draws are not;
noise-free negative copies would lie on the positive ones, and with them the backbone's
gradients differ by 1-2% from the second step on, likely rounding left by the cancelling
gradients of coinciding queries, which the bound does not cover); batch
norms use their running statistics, since each process normalises over its own batch
(mmengine's ``sync_bn`` setting synchronises them on GPUs, and so would remove that one
intended difference). Samples of different camera and box counts make the padding differ
between the two runs: one process pads every sample to 3 cameras, the second of two
processes to 2; each process's largest box count moves from step to step, and in the
second step the first of two processes holds no box at all (no denoising there, none
carried from it).
"""

import copy
import datetime
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from ..utils.distributed_end import exit_distributed_process, wait_for_other_processes
from ..utils.free_port import free_port
from .random_inputs import build_untrained_model, random_batch, random_depth
from .tolerances import network_reductions, rounding_tolerance

BATCH_CAMERAS = (3, 2, 2, 2)  # per sample; the processes get consecutive samples
BOX_COUNTS = (5, 0, 0, 3)
DEPTH_STRIDES = (4, 8, 16)


def deterministic_config(config: str | Path | Config) -> Config:
    """The config with its model's random draws removed (see the module docstring)."""
    cfg = copy.deepcopy(config) if isinstance(config, Config) else Config.fromfile(str(config))
    model = cfg.model
    model.grid_mask = None
    sampler = model.head.get('sampler')
    if sampler is not None:
        sampler.update(
            num_dn_groups=1,
            num_temp_dn_groups=min(sampler.get('num_temp_dn_groups', 0), 1),
            dn_noise_scale=(0.0,) * 11,
            add_neg_dn=False,
        )
    return cfg


def without_random_layers(model: nn.Module) -> nn.Module:
    """Dropout off everywhere (modules and the functional rates layers keep), batch norms
    on their running statistics; the rest of the model stays in training mode."""
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
        elif isinstance(module, nn.MultiheadAttention):
            module.dropout = 0.0
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
        if isinstance(getattr(module, 'attn_drop', None), float):
            module.attn_drop = 0.0
    return model


def global_batch(step: int, size: tuple[int, int]) -> dict:
    """Step ``step``'s batch of ``len(BATCH_CAMERAS)`` samples, each with its own camera
    count, a box count from ``BOX_COUNTS`` and depth targets on ``DEPTH_STRIDES``; sample
    ``b`` continues the same scene every step, one frame later."""
    batch = random_batch(
        batch=len(BATCH_CAMERAS), cams=BATCH_CAMERAS, size=size, seed=step, frame=step
    )
    rng = np.random.default_rng(1000 + step)
    width, height = size
    depth = []
    for stride in DEPTH_STRIDES:
        per_sample = []
        for cams in BATCH_CAMERAS:
            per_sample.append(random_depth(rng, cams, height // stride, width // stride))
        depth.append(per_sample)
    batch['inputs']['depth_targets'] = depth
    # The counts move between the samples from step to step: each process's largest count
    # (its padding) changes, and differs from the whole batch's.
    for index, sample in enumerate(batch['data_samples']):
        boxes = BOX_COUNTS[(index + step) % len(BOX_COUNTS)]
        sample.gt_instances_3d = sample.gt_instances_3d[:boxes]
    return batch


def part_of(batch: dict, rank: int, world: int) -> dict:
    """The consecutive samples of ``batch`` process ``rank`` of ``world`` trains on."""
    count = len(batch['data_samples'])
    if count % world:
        raise ValueError(f'{count} samples do not split over {world} processes')
    share = count // world
    pick = slice(rank * share, (rank + 1) * share)
    inputs = {}
    for key, value in batch['inputs'].items():
        # depth_targets: per stride, per sample
        inputs[key] = [level[pick] for level in value] if key == 'depth_targets' else value[pick]
    return {'inputs': inputs, 'data_samples': batch['data_samples'][pick]}


def _train(rank: int, world: int, config: Config, state: Path, out: Path, steps: int, port: int):
    """One process of a run: ``steps`` SGD steps of ``config``'s model from ``state``;
    saves its losses and gradients per step to ``out/rank{rank}.pt``."""
    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
        # Collectives the processes do not pair up fail after a minute instead of hanging.
        dist.init_process_group(
            'gloo', rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60)
        )
    model = build_untrained_model(config)
    model.load_state_dict(torch.load(state))
    without_random_layers(model.train())
    network = (
        MMDistributedDataParallel(model, device_ids=None, broadcast_buffers=False)
        if world > 1
        else model
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    size = tuple(config.get('image_size', (256, 144)))
    records = []
    for step in range(steps):
        data = model.data_preprocessor(part_of(global_batch(step, size), rank, world), True)
        losses = network(**data, mode='loss')
        total, _ = model.parse_losses(losses)
        optimizer.zero_grad()
        total.backward()  # DDP averages the gradients over the processes here
        records.append(
            {
                'losses': {name: float(value.detach()) for name, value in losses.items()},
                'gradients': {
                    name: parameter.grad.clone()
                    for name, parameter in model.named_parameters()
                    if parameter.grad is not None
                },
            }
        )
        optimizer.step()
    torch.save(records, out / f'rank{rank}.pt')
    if wait_for_other_processes():
        exit_distributed_process()  # a gloo group's teardown can hang (distributed_end)


def compare_one_and_several_processes(
    config: str | Path | Config, processes: int = 2, steps: int = 2
) -> tuple[list[dict], list[dict], nn.Module]:
    """Runs ``deterministic_config(config)``'s model for ``steps`` steps in one process at
    batch ``len(BATCH_CAMERAS)`` and in ``processes`` processes at an equal share each, from
    the same weights.

    Returns:
        tuple: per step, one process's record and the processes' record (``losses``: name ->
        value, the processes' the mean over processes; ``gradients``: name -> tensor, the
        processes' as DDP averaged them, taken from rank 0), and the model (for tolerances).
    """
    import torch.multiprocessing as mp

    cfg = deterministic_config(config)
    torch.manual_seed(0)
    model = build_untrained_model(cfg)
    with tempfile.TemporaryDirectory(prefix='ddp_equivalence_') as folder:
        root = Path(folder)
        state = root / 'state.pth'
        torch.save(model.state_dict(), state)
        runs = []
        for world in (1, processes):
            out = root / f'world{world}'
            out.mkdir()
            mp.spawn(
                _train, args=(world, cfg, state, out, steps, free_port()), nprocs=world, join=True
            )
            runs.append([torch.load(out / f'rank{rank}.pt') for rank in range(world)])
    one = [records[0] for records in zip(*runs[0], strict=True)]
    several = []
    for records in zip(*runs[1], strict=True):
        # A loss a process lacks (no ground truth to denoise in its part) adds 0 to the mean.
        names = sorted(set().union(*(r['losses'] for r in records)))
        several.append(
            {
                'losses': {
                    name: sum(r['losses'].get(name, 0.0) for r in records) / len(records)
                    for name in names
                },
                'gradients': records[0]['gradients'],
            }
        )
    return one, several, model


def relative_tolerance(model: nn.Module, size: tuple[int, int]) -> float:
    """How far the two runs' losses and gradients may differ, relative to each value's
    magnitude (a loss) or the largest magnitude of each gradient, from the rounding model of
    ``rounding_tolerance``: float32 sums as long as the longest the step computes (a first
    convolution's weight gradient sums over every pixel it outputs for the global batch),
    chained through the forward and the backward (twice the network's depth). The two runs
    sum in other orders and batch sizes; nothing else may differ. A max pooling whose window
    holds inputs equal up to rounding may route its gradient to another of them in the other
    run; that moves the first convolution's gradient by one window's share of its sum, inside
    this bound. A loss averaged per process instead moves the gradients of the layers it
    trains by tens of percent (its value, an average of similar terms, by far less)."""
    terms, depth = network_reductions(model)
    width, height = size
    pixels = sum(BATCH_CAMERAS) * (width // 2) * (height // 2)
    return rounding_tolerance(torch.float32, max(terms, pixels), depth=2 * depth)['rtol']


def largest_differences(one: list[dict], several: list[dict]) -> list[dict]:
    """Per step: ``losses`` name -> (one process, the processes' mean, |difference| /
    |one process|) and ``gradient`` (name, max |difference| / max |one process's|) of the
    parameter that differs most."""
    rows = []
    for a, b in zip(one, several, strict=True):
        if a['losses'].keys() != b['losses'].keys():
            raise ValueError(
                f'the runs computed other losses: {sorted(a["losses"])} and {sorted(b["losses"])}'
            )
        if a['gradients'].keys() != b['gradients'].keys():
            raise ValueError('the runs gave gradients to other parameters')
        losses = {
            name: (
                value,
                b['losses'][name],
                abs(b['losses'][name] - value) / max(abs(value), 1e-30),
            )
            for name, value in a['losses'].items()
        }
        worst = max(
            (
                float((b['gradients'][name] - gradient).abs().max())
                / max(float(gradient.abs().max()), 1e-30),
                name,
            )
            for name, gradient in a['gradients'].items()
        )
        rows.append({'losses': losses, 'gradient': (worst[1], worst[0])})
    return rows


def deterministic_losses(cfg: Config, steps: int = 3) -> tuple[list[dict], nn.Module]:
    """``steps`` forward and backward passes of ``cfg``'s model (``deterministic_config``'s
    settings, seed-0 weights, ``without_random_layers``) in this process on
    ``global_batch``es, without optimizer steps: each step's losses (name -> value) and
    the model, for comparing two settings that should train alike."""
    torch.manual_seed(0)
    model = without_random_layers(build_untrained_model(cfg).train())
    size = tuple(cfg.get('image_size', (256, 144)))
    records = []
    for step in range(steps):
        data = model.data_preprocessor(global_batch(step, size), training=True)
        losses = model(**data, mode='loss')
        sum(losses.values()).backward()
        records.append({name: float(value.detach()) for name, value in losses.items()})
    return records, model


def losses_beyond_rounding(expected: list[dict], got: list[dict], model: nn.Module) -> list:
    """The (step, loss, expected, got) of two runs' losses (``deterministic_losses``) that
    differ by more than float32 rounding in ``model``'s reductions, or in their names."""
    terms, depth = network_reductions(model)
    beyond = []
    for step, (a, b) in enumerate(zip(expected, got, strict=True)):
        if a.keys() != b.keys():
            beyond.append((step, 'names', sorted(a), sorted(b)))
            continue
        for name, value in a.items():
            scale = max(abs(value), 1e-6)  # some losses are 0 (no query regresses yet)
            tolerance = rounding_tolerance(torch.float32, terms, depth=depth, scale=scale)
            if abs(b[name] - value) > tolerance['atol']:
                beyond.append((step, name, value, b[name]))
    return beyond
