"""Models and batches for the training-step analysis tools (profiling, AMP checks)."""

import argparse
import atexit
import shutil
import tempfile

import numpy as np

from ..structures.multiview_batch import stack_multiview_inputs
from .random_inputs import build_untrained_model, random_batch, random_depth


def add_training_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line arguments of ``random_training_inputs`` and
    ``config_training_inputs``, as the analysis tools take them."""
    from mmengine.config import DictAction

    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument('--size', type=int, nargs=2, default=(480, 272))
    parser.add_argument('--boxes', type=int, default=12)
    parser.add_argument(
        '--real-data',
        action='store_true',
        help="the config's dataloader, model and optimizer wrapper",
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config settings (e.g. the anchor file or data root)',
    )


def random_training_inputs(
    config: str,
    device: str,
    batch: int,
    cams: int,
    size: tuple[int, int],
    boxes: int,
    count: int,
    cfg_options: dict | None = None,
    seed: int = 0,
    depth_strides: tuple[int, ...] | None = None,
):
    """The config's model (``cfg_options`` merged; random anchors) in training mode on
    ``device`` and ``count`` random batches of ``batch`` samples with ``cams`` cameras at
    ``size`` (W, H) and ``boxes`` objects (their pixels and boxes drawn with ``seed``),
    stacked as the training loader's ``multiview_collate`` stacks them in its workers (so a
    timed step, like a training step, does not stack images on the host thread that launches
    the GPU's work). With ``depth_strides`` each sample also carries random depth targets
    at those strides (``config_depth_strides``), so that a dense depth branch trains too."""
    model = build_untrained_model(config, cfg_options).to(device).train()
    batches = []
    rng = np.random.default_rng(seed)
    width, height = size
    for frame in range(count):
        data = random_batch(batch, cams, tuple(size), boxes, seed=seed, frame=frame)
        if depth_strides:
            data['inputs']['depth_targets'] = [
                [random_depth(rng, cams, height // s, width // s) for _ in range(batch)]
                for s in depth_strides
            ]
        data['inputs'] = stack_multiview_inputs(data['inputs'])
        batches.append(data)
    return model, batches


def config_depth_strides(cfg) -> tuple[int, ...] | None:
    """The strides of the depth targets the training pipeline of ``cfg`` (an mmengine
    Config) makes (``MultiScaleDepthTargets``); None without."""
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    while 'pipeline' not in dataset and isinstance(dataset.get('dataset'), dict):
        dataset = dataset['dataset']  # a wrapper (repeat, concatenation of one)
    pipeline = dataset.get('pipeline') or []
    strides = [step['strides'] for step in pipeline if step['type'] == 'MultiScaleDepthTargets']
    return tuple(strides[0]) if strides else None


def config_training_inputs(
    config: str,
    device: str,
    batch: int,
    count: int,
    amp: str | None = None,
    cfg_options: dict | None = None,
):
    """The config's own model, optimizer wrapper (its constructor and clipping; with ``amp``
    'bf16' or 'fp16' mixed precision) and the first ``count`` batches of its training
    dataloader with ``batch`` samples each, loaded up front; ``cfg_options`` are merged into
    the config first (e.g. another data root or anchor file); and the loader's iterator,
    running on from the batch after those."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from ..engine.cli import amp_optim_wrapper

    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options or {})
    cfg.train_dataloader.batch_size = batch
    cfg.train_dataloader.sampler.batch_size = batch
    if amp:
        cfg.optim_wrapper.update(amp_optim_wrapper(amp))
    # The Runner needs a work dir for its log; nothing in it outlives the analysis.
    cfg.work_dir = tempfile.mkdtemp(prefix='train_step_')
    atexit.register(shutil.rmtree, cfg.work_dir, ignore_errors=True)
    if not device.startswith('cuda'):
        cfg.train_dataloader.num_workers = 0
        cfg.train_dataloader.persistent_workers = False
    runner = Runner.from_cfg(cfg)
    model = runner.model.train()
    wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    loader = iter(runner.build_dataloader(cfg.train_dataloader))
    batches = []
    for _ in range(count):
        try:
            batches.append(next(loader))
        except StopIteration:
            raise SystemExit(
                f'the training set of {config} gives fewer than {count} batches of {batch}; '
                'ask for fewer steps or a smaller batch'
            ) from None
    return model, wrapper, batches, loader
