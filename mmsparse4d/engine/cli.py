"""Argument and config handling shared by ``tools/train.py`` and ``tools/test.py``.

The tools stay thin (parse, build the config, run the mmengine Runner); everything they
share lives here so that both accept the same switches in the same way, as mmdet3d's do.
"""

import argparse
import os
import os.path as osp
from collections.abc import Sequence

from mmengine.config import Config, DictAction

AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='directory for logs, checkpoints and results')
    parser.add_argument(
        '--amp',
        nargs='?',
        const='fp16',
        choices=sorted(AMP_DTYPES),
        help='automatic mixed precision on the GPU; fp16 (the default when given bare) or bf16',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_iters=100 '
        'optim_wrapper.optimizer.lr=2e-4; lists as key="[a,b]"',
    )
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torchrun passes LOCAL_RANK in the environment; older launchers pass --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def build_train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Train an mmsparse4d model')
    parser.add_argument('config', help='config file path')
    _add_common_arguments(parser)
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or, given bare, from the latest in the work dir',
    )
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the actual over the configured batch size',
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help='torch.compile the backbone, neck, anchor encoder and every head operation '
        '(CompileRegionsHook)',
    )
    parser.add_argument(
        '--compile-backend', default='inductor', help='torch.compile backend for --compile'
    )
    return parser


def build_test_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Test (and evaluate) an mmsparse4d model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    _add_common_arguments(parser)
    parser.add_argument('--out', help='dump the raw predictions to this pickle file')
    return parser


def _check_file(path: str, what: str) -> None:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')


def _load_config(args: argparse.Namespace) -> Config:
    _check_file(args.config, 'config file')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # Priority: --work-dir, then the config's work_dir, then ./work_dirs/<config name>.
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def _require_cuda_for_amp(amp: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(f'--amp {amp} needs a CUDA device; none is available here')


def check_evaluation_batches(cfg: Config) -> None:
    """Tracking evaluation feeds one frame per step: a val/test loader on
    ``SequenceTestSampler`` with a larger batch would interleave a scene's frames into
    parallel streams (mmengine builds samplers without the batch size, so the sampler
    cannot see it)."""
    for key in ('val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader:
            continue
        sampler = (loader.get('sampler') or {}).get('type')
        if sampler == 'SequenceTestSampler' and loader.get('batch_size', 1) != 1:
            raise ValueError(
                f'{key}.batch_size must be 1 with SequenceTestSampler (one frame per step), '
                f'got {loader["batch_size"]} in {cfg.filename}'
            )


def make_train_config(argv: Sequence[str] | None = None) -> Config:
    """Parse ``tools/train.py`` arguments and return the config the Runner gets."""
    args = build_train_parser().parse_args(argv)
    cfg = _load_config(args)
    check_evaluation_batches(cfg)
    if args.amp is not None:
        _require_cuda_for_amp(args.amp)
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type != 'OptimWrapper':
            raise ValueError(
                f'--amp needs optim_wrapper.type OptimWrapper to replace, the config has '
                f'{optim_type!r}'
            )
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = AMP_DTYPES[args.amp]
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError(
                f'--auto-scale-lr needs auto_scale_lr.base_batch_size in the config {args.config}'
            )
        cfg.auto_scale_lr.enable = True
    if args.compile_backend != 'inductor' and not args.compile:
        raise ValueError('--compile-backend is for --compile')
    if args.compile:
        hooks = list(cfg.get('custom_hooks', []))
        hooks.append(dict(type='CompileRegionsHook', backend=args.compile_backend))
        cfg.custom_hooks = hooks
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        _check_file(args.resume, 'checkpoint to resume from')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def make_test_config(argv: Sequence[str] | None = None) -> Config:
    """Parse ``tools/test.py`` arguments and return the config the Runner gets."""
    args = build_test_parser().parse_args(argv)
    cfg = _load_config(args)
    check_evaluation_batches(cfg)
    _check_file(args.checkpoint, 'checkpoint')
    cfg.load_from = args.checkpoint
    if args.amp is not None:
        _require_cuda_for_amp(args.amp)
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must name a .pkl or .pickle file, got {args.out}')
        dump = dict(type='DumpResults', out_file_path=args.out)
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = (
            [*evaluator, dump] if isinstance(evaluator, list) else [evaluator, dump]
        )
    return cfg


def _build_runner(cfg: Config):
    from mmengine.runner import Runner

    from ..registry import RUNNERS

    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def use_cpu_distributed(cfg: Config) -> bool:
    """Without CUDA, a distributed launch by torchrun (``--launcher pytorch``, which sets
    the rendezvous environment) runs on the CPU with the gloo backend: mmengine's
    ``init_dist`` would call ``torch.cuda.set_device``, so the process group is started
    here and DDP gets no device ids. The choice is logged. Returns whether it was made.
    Other launchers without CUDA are refused with a clear error."""
    import torch
    import torch.distributed as dist
    from mmengine.logging import print_log

    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA; on a CPU machine launch with torchrun '
            '(tools/dist_train.sh, --launcher pytorch), which falls back to gloo'
        )
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.update(device_ids=None, broadcast_buffers=False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    print_log(
        f'no CUDA device: distributed training on the CPU with the gloo backend '
        f'(rank {dist.get_rank()} of {dist.get_world_size()})',
        logger='current',
    )
    return True


def train_main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``tools/train.py``."""
    from .checkpoint_settings import check_training_checkpoint

    cfg = make_train_config(argv)
    check_training_checkpoint(cfg)
    use_cpu_distributed(cfg)
    _build_runner(cfg).train()


def _check_checkpoint_fits(runner, cfg: Config) -> None:
    """mmengine loads ``load_from`` non-strictly (a mismatch only warns); testing a
    checkpoint that does not fit the config must fail before any result is written."""
    from .checkpoint_settings import load_fitting_checkpoint

    load_fitting_checkpoint(runner.model, cfg.load_from, cfg)


def test_main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``tools/test.py``."""
    cfg = make_test_config(argv)
    use_cpu_distributed(cfg)
    runner = _build_runner(cfg)
    _check_checkpoint_fits(runner, cfg)
    runner.test()
