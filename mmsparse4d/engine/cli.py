"""Argument and config handling shared by ``tools/train.py`` and ``tools/test.py``.

The tools stay thin (parse, build the config, run the mmengine Runner); everything they
share lives here so that both accept the same switches in the same way, as mmdet3d's do.

Everything a user can get wrong is checked before the Runner starts, and raised as an
``InputError`` naming the file or argument (one line on stderr, exit status 2, through
``run_tool``): missing or unreadable config and checkpoint files, ``--cfg-options`` keys the
config does not have (``cfg_options``), outputs that cannot be written (``output_paths``),
switches that need what is not there (``--amp`` without CUDA). A training run holds its work
dir's lock (``work_dir_lock``), and a bare ``--resume`` takes the newest checkpoint that
loads (``checkpoint_files.find_resumable_checkpoint``).
"""

import argparse
import logging
import os
import os.path as osp
import tempfile
from collections.abc import Sequence

from mmengine.config import Config, DictAction

from ..ops.deformable_aggregation import MSDA_FEATURE_GRADIENTS, set_msda_feature_gradient
from ..utils.distributed_end import exit_distributed_process, wait_for_other_processes
from ..utils.input_error import InputError
from ..utils.output_paths import check_output_dir, check_output_file
from .cfg_options import ADD_PREFIX, check_cfg_options, check_config_keys
from .class_consistency import check_classes_agree
from .pretrained_inits import check_pretrained_inits

AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
# cfg.resume for a bare --resume until resolve_bare_resume decides (mmengine takes a bool).
BARE_RESUME = 'auto'


def amp_optim_wrapper(amp: str) -> dict:
    """The optimizer wrapper's settings for ``--amp``: autocast in the dtype, and loss
    scaling for fp16 only. bf16 has float32's exponent range, so its gradients do not
    underflow where fp16's would, and scaling by a power of two is exact in either (away
    from the range's ends): a scaler would only add its unscaling, inf checks and updates
    to every step. A checkpoint written with a bf16 scaler resumes (the disabled scaler
    ignores the state)."""
    scaling = 'dynamic' if amp == 'fp16' else dict(enabled=False)
    return dict(type='AmpOptimWrapper', dtype=AMP_DTYPES[amp], loss_scale=scaling)


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
        'optim_wrapper.optimizer.lr=2e-4; lists as key="[a,b]". A key the config does not '
        f'have is an error; prefix it with {ADD_PREFIX} to add it '
        f'({ADD_PREFIX}model.head.decoder.track_stitching.min_score=0.3)',
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
    parser.add_argument(
        '--cuda-graphs',
        action='store_true',
        help="run the head's decoder loop and re-identification branch (forward and backward) "
        'as CUDA graphs, captured once per input signature (model.head.cuda_graphs=True)',
    )
    parser.add_argument(
        '--msda-feature-gradient',
        choices=MSDA_FEATURE_GRADIENTS,
        help='how the CUDA aggregation backward sums the feature gradient (the config key '
        'msda_feature_gradient; default: per dtype and channels, see '
        'mmsparse4d.ops.default_msda_feature_gradient)',
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
    if not osp.exists(path):
        raise InputError(f'{what} not found', path)
    if not osp.isfile(path):
        raise InputError(f'{what} is a folder, not a file', path)


def _missing_module(error: BaseException) -> ModuleNotFoundError | None:
    """The ModuleNotFoundError behind mmengine's custom-imports error, if that is its cause."""
    while error is not None:
        if isinstance(error, ModuleNotFoundError):
            return error
        error = error.__cause__ or error.__context__
    return None


def read_config(path: str) -> Config:
    """``Config.fromfile``, with the errors of the file itself as ``InputError`` naming it
    (a syntax error with its line, a missing ``_base_``, an undefined name, a
    ``custom_imports`` module that is not there)."""
    _check_file(path, 'config file')
    try:
        return Config.fromfile(path)
    except SyntaxError as error:
        raise InputError(f'config syntax error: {error.msg}', path, error.lineno) from error
    except FileNotFoundError as error:
        raise InputError(f'a file it includes is missing: {error.filename}', path) from error
    except NameError as error:
        raise InputError(f'config error: {error}', path) from error
    except ImportError as error:
        missing = _missing_module(error)
        if missing is None:
            raise  # a module that is there but fails to import: a bug, with its traceback
        raise InputError(
            f'custom_imports: {missing}; check the name, or put its package on PYTHONPATH',
            path,
        ) from error


def _load_config(args: argparse.Namespace) -> Config:
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = read_config(args.config)
    cfg.launcher = args.launcher
    added = []
    if args.cfg_options is not None:
        cfg.merge_from_dict(check_cfg_options(cfg, args.cfg_options))
        added = [key[len(ADD_PREFIX) :] for key in args.cfg_options if key.startswith(ADD_PREFIX)]
    check_config_keys(cfg, added)  # the config file's own keys
    check_classes_agree(cfg)
    keep_workers_only_with_workers(cfg)
    # Priority: --work-dir, then the config's work_dir, then ./work_dirs/<config name>.
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    check_output_dir(cfg.work_dir, '--work-dir' if args.work_dir is not None else 'work_dir')
    return cfg


def keep_workers_only_with_workers(cfg: Config) -> list[str]:
    """A loader with ``num_workers=0`` (e.g. set on the command line to debug in one
    process) loads in the main process, where ``persistent_workers`` has nothing to keep
    and torch refuses it: set it off, and say so. Returns the loaders changed."""
    from mmengine.logging import print_log

    changed = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('num_workers', 0) == 0 and loader.get('persistent_workers'):
            loader.persistent_workers = False
            changed.append(key)
            print_log(
                f'{key}.persistent_workers set to False: {key}.num_workers is 0 (the main '
                'process loads the data; there are no workers to keep)',
                'current',
            )
    return changed


def _require_cuda_for_amp(amp: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise InputError(f'--amp {amp} needs a CUDA device; none is available here')


def _use_cuda_graphs(cfg: Config, args: argparse.Namespace) -> None:
    import torch
    from mmengine.logging import print_log

    if args.compile:
        raise InputError('--cuda-graphs and --compile are alternatives; choose one')
    if not torch.cuda.is_available():
        raise InputError('--cuda-graphs needs a CUDA device; none is available here')
    head = cfg.get('model', {}).get('head')
    if not isinstance(head, dict):
        raise InputError('--cuda-graphs needs a model with a head (model.head)', args.config)
    head['cuda_graphs'] = head.get('cuda_graphs') or True
    for hint in cuda_graph_hints(cfg):
        print_log(f'--cuda-graphs: {hint}', 'current', logging.WARNING)


def cuda_graph_hints(cfg: Config) -> list[str]:
    """What in ``cfg`` would make the CUDA-graph regions capture one signature per batch
    shape (each with its own memory, eager after ``max_graphs``), with the setting that
    fixes it; empty where nothing does."""
    model = cfg.get('model', {})
    hints = []
    sampler = (model.get('head') or {}).get('sampler') or {}
    denoising = isinstance(sampler, dict) and sampler and sampler.get('num_dn_groups', 5) > 0
    if denoising and not sampler.get('static_dn_width'):
        hints.append(
            "the denoising groups are as wide as each batch's most boxes; "
            'model.head.sampler.static_dn_width=True keeps one width (the same losses)'
        )
    preprocessor = model.get('data_preprocessor') or {}
    if isinstance(preprocessor, dict) and not preprocessor.get('pad_cameras_to'):
        hints.append(
            "the camera axis is each batch's most cameras; where the layouts' camera counts "
            'differ, model.data_preprocessor.pad_cameras_to=N (their most) keeps one count'
        )
    return hints


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
            raise InputError(
                f'{key}.batch_size must be 1 with SequenceTestSampler (one frame per step), '
                f'got {loader["batch_size"]}',
                cfg.filename,
            )


def check_annotation_files(cfg: Config, keys: Sequence[str]) -> None:
    """The annotation pickles of the loaders ``keys`` use (OVPKL datasets) exist, checked
    before the Runner writes its work dir: a wrong path is an ``InputError`` naming it and
    its config key, not a traceback after the model is built."""
    from ..datasets.ovpkl_dataset import annotation_files

    for key in keys:
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        if not str(dataset.get('type', '')).endswith('OVPKLDataset') or 'ann_file' not in dataset:
            continue
        path, root = dataset['ann_file'], dataset.get('data_root') or ''
        if root and not osp.isabs(path):
            path = osp.join(root, path)
        try:
            annotation_files(path)
        except InputError as error:
            raise InputError(f'{key}.dataset.ann_file: {error.message}', error.path) from None


def make_train_config(argv: Sequence[str] | None = None) -> Config:
    """Parse ``tools/train.py`` arguments and return the config the Runner gets."""
    args = build_train_parser().parse_args(argv)
    cfg = _load_config(args)
    check_evaluation_batches(cfg)
    check_pretrained_inits(cfg)
    validates = cfg.get('val_cfg') and cfg.get('val_dataloader')
    check_annotation_files(cfg, ['train_dataloader'] + (['val_dataloader'] if validates else []))
    if args.amp is not None:
        _require_cuda_for_amp(args.amp)
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type != 'OptimWrapper':
            raise InputError(
                f'--amp needs optim_wrapper.type OptimWrapper to replace, the config has '
                f'{optim_type!r}',
                args.config,
            )
        cfg.optim_wrapper.update(amp_optim_wrapper(args.amp))
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise InputError(
                '--auto-scale-lr needs auto_scale_lr.base_batch_size in the config', args.config
            )
        cfg.auto_scale_lr.enable = True
    if args.compile_backend != 'inductor' and not args.compile:
        raise InputError('--compile-backend is for --compile; add --compile')
    if args.compile:
        hooks = list(cfg.get('custom_hooks', []))
        hooks.append(dict(type='CompileRegionsHook', backend=args.compile_backend))
        cfg.custom_hooks = hooks
    if args.cuda_graphs:
        _use_cuda_graphs(cfg, args)
    if args.msda_feature_gradient is not None:
        cfg.msda_feature_gradient = args.msda_feature_gradient
    mode = cfg.get('msda_feature_gradient')
    if mode is not None and mode not in MSDA_FEATURE_GRADIENTS:
        raise InputError(
            f'msda_feature_gradient must be one of {", ".join(MSDA_FEATURE_GRADIENTS)}, '
            f'got {mode!r}',
            args.config,
        )
    if args.resume == 'auto':
        # Resolved under the work dir's lock (resolve_bare_resume): the work dir's newest
        # complete checkpoint, else the config's load_from (a fine-tuning's start), else
        # scratch. load_from stays: a time-sliced fine-tuning's first slice starts from it.
        cfg.resume = BARE_RESUME
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
    check_annotation_files(cfg, ['test_dataloader'])
    _check_file(args.checkpoint, 'checkpoint')
    cfg.load_from = args.checkpoint
    if args.amp is not None:
        _require_cuda_for_amp(args.amp)
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise InputError(f'--out must name a .pkl or .pickle file, got {args.out}')
        # DumpResults writes it after the whole test: a path that cannot be written fails now.
        check_output_file(args.out, '--out')
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
        raise InputError(
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
        f'no CUDA device: a distributed run on the CPU with the gloo backend '
        f'(rank {dist.get_rank()} of {dist.get_world_size()})',
        logger='current',
    )
    return True


def is_bare_resume(cfg: Config) -> bool:
    """Whether ``cfg`` resumes from whatever its work dir holds: a bare ``--resume``, or a
    config with ``resume = True`` and no ``load_from`` (mmengine's meaning)."""
    resume = cfg.get('resume')
    return resume == BARE_RESUME or (resume is True and not cfg.get('load_from'))


def resolve_bare_resume(cfg: Config) -> tuple[str, int] | None:
    """For a bare resume (``is_bare_resume``): resume from the newest checkpoint in the work
    dir that loads; with none, start from the config's ``load_from`` (given with a bare
    ``--resume`` only) or from scratch, not resuming (mmengine would read
    ``last_checkpoint`` alone, empty or naming a truncated file). Sets ``cfg.resume`` and
    ``cfg.load_from`` to what the Runner does. Returns the line to log and its level; None
    for other runs."""
    from .checkpoint_files import find_resumable_checkpoint

    if not is_bare_resume(cfg):
        return None
    start = cfg.get('load_from') or None if cfg.get('resume') == BARE_RESUME else None
    choice = find_resumable_checkpoint(cfg.work_dir)
    if choice.checkpoint is None:
        cfg.resume = False
        cfg.load_from = start
    else:
        cfg.resume = True
        cfg.load_from = choice.checkpoint
    level = logging.WARNING if choice.trouble else logging.INFO
    return choice.summary(cfg.work_dir, start=start), level


def check_anchor_file(cfg: Config) -> None:
    """The instance bank's anchor file, which training initialises the anchors from, read
    before the work dir is written (the model's build would fail only in the Runner)."""
    from ..models.layers.instance_bank import load_anchors

    head = (cfg.get('model') or {}).get('head') or {}
    bank = head.get('instance_bank') if isinstance(head, dict) else None
    if isinstance(bank, dict) and isinstance(bank.get('anchor'), (str, os.PathLike)):
        load_anchors(bank['anchor'], bank.get('num_anchor', 900), log=False)


def train_main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``tools/train.py``."""
    from .checkpoint_settings import check_training_checkpoint, check_training_start_fits
    from .work_dir_lock import WorkDirLock, is_rank_zero

    cfg = make_train_config(argv)
    check_anchor_file(cfg)
    auto_resume = is_bare_resume(cfg)
    if not auto_resume:
        start = check_training_checkpoint(cfg)  # refused before the lock creates the work dir
    use_cpu_distributed(cfg)
    # One lock per run, held by rank 0 until the process ends.
    lock = WorkDirLock(cfg.work_dir).acquire() if is_rank_zero() else None
    try:
        resume_note = resolve_bare_resume(cfg)  # under the lock: no other run writes checkpoints
        if auto_resume:
            start = check_training_checkpoint(cfg)
        runner = _build_runner(cfg)
        if resume_note is not None:
            runner.logger.log(resume_note[1], resume_note[0])
        if cfg.get('msda_feature_gradient') is not None:
            set_msda_feature_gradient(cfg.msda_feature_gradient)
            runner.logger.info(
                f'MSDA feature gradient summed {cfg.msda_feature_gradient} (msda_feature_gradient)'
            )
        check_training_start_fits(runner.model, cfg, start)
        runner.train()
        distributed = wait_for_other_processes()
    finally:
        if lock is not None:
            lock.release()
    if distributed:
        exit_distributed_process()


def _check_checkpoint_fits(runner, cfg: Config, loaded: dict) -> None:
    """mmengine loads ``load_from`` non-strictly (a mismatch only warns); testing a
    checkpoint that does not fit the config must fail before any result is written."""
    from .checkpoint_settings import load_fitting_checkpoint

    load_fitting_checkpoint(runner.model, cfg.load_from, cfg, loaded=loaded)


def test_main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``tools/test.py``."""
    from .checkpoint_settings import read_any_checkpoint, use_checkpoint_anchors

    cfg = make_test_config(argv)
    # Read once, memory-mapped: what the file is (errors name it) and its anchors.
    loaded = read_any_checkpoint(cfg.load_from, mmap=True)
    with tempfile.TemporaryDirectory(prefix='mmsparse4d_test_') as folder:
        anchor_note = use_checkpoint_anchors(cfg, loaded, cfg.load_from, folder)
        use_cpu_distributed(cfg)
        runner = _build_runner(cfg)
        if anchor_note is not None:
            runner.logger.info(anchor_note)
        _check_checkpoint_fits(runner, cfg, loaded)
        runner.test()
        distributed = wait_for_other_processes()
    if distributed:
        exit_distributed_process()
