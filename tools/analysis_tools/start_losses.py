"""Training losses of fine-tuning starts on the same training batches, side by side.

    python tools/analysis_tools/start_losses.py CONFIG CHECKPOINT [CHECKPOINT ...]
        [--batches 6] [--batch-size 4] [--amp bf16] [--cfg-options k=v ...]

Builds the config's model for each checkpoint (weights loaded as ``load_from`` would: keys
the file lacks or holds in another shape keep the model's initialisation, drawn with the
same seed for every checkpoint, and are listed), then computes the losses of the first
``--batches`` batches of the config's training dataloader in training mode without
gradients, with dropout and denoising drawn alike for every checkpoint, and prints each
loss term's mean per checkpoint. What it answers: how far from its trained state a
fine-tuning starts, e.g. with the checkpoint's learned anchors against new k-means anchors
(``tools/model_converters/finetune_start.py``), or how the losses of one checkpoint change
under mixed precision (``--amp``: the forward under the CPU's autocast, as training's
``--amp`` runs it on a GPU).
"""

import argparse
from collections import Counter
from pathlib import Path

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, set_random_seed

from mmsparse4d.engine.checkpoint_files import read_checkpoint
from mmsparse4d.engine.cli import AMP_DTYPES
from mmsparse4d.registry import MODELS
from mmsparse4d.utils.input_error import InputError, run_tool

# Loss terms summed into the detection total (every decoder's, the denoising ones included).
DETECTION_TERMS = ('loss_cls', 'loss_box', 'loss_cns', 'loss_yns')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoints', nargs='+', type=Path)
    parser.add_argument('--batches', type=int, default=6)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument(
        '--amp', choices=tuple(AMP_DTYPES), help='the forward under autocast in this dtype'
    )
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(argv)
    if args.batches < 1 or args.batch_size < 1:
        raise InputError('--batches and --batch-size must be >= 1')
    return args


def start_losses(
    cfg: Config, checkpoint: Path, batches: int, batch_size: int, amp: str | None = None
) -> tuple[dict, list]:
    """Mean of each loss term over ``batches`` training batches, and the model's keys the
    checkpoint lacks or holds in another shape."""
    state = read_checkpoint(checkpoint).get('state_dict')
    if not isinstance(state, dict):
        raise InputError('holds no state_dict', path=checkpoint)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False, batch_size=batch_size)
    if 'batch_size' in loader_cfg.get('sampler', {}):
        loader_cfg.sampler.batch_size = batch_size
    set_random_seed(0)  # Python, numpy and torch: the same batches for every checkpoint
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmsparse4d')):
        model = MODELS.build(cfg.model)
        model.init_weights()
        shapes = {key: value.shape for key, value in model.state_dict().items()}
        fitting = {
            key: value.float()
            for key, value in state.items()
            if key not in shapes or value.shape == shapes[key]
        }
        loaded = model.load_state_dict(fitting, strict=False)
        if loaded.unexpected_keys:
            raise InputError(
                f'keys the model does not have: {loaded.unexpected_keys[:3]} '
                f'({len(loaded.unexpected_keys)} in all)',
                path=checkpoint,
            )
        loader = Runner.build_dataloader(loader_cfg, seed=0)
    model.train()
    # bf16 stands in when off: autocast takes a dtype even when disabled.
    autocast = torch.autocast(
        'cpu', dtype=getattr(torch, AMP_DTYPES[amp or 'bf16']), enabled=amp is not None
    )
    sums = Counter()
    with torch.no_grad():
        for index, data in enumerate(loader):
            if index == batches:
                break
            torch.manual_seed(1000 + index)
            inputs = model.data_preprocessor(data, True)
            with autocast:
                losses = model(**inputs, mode='loss')
            for name, value in losses.items():
                if name.startswith('loss'):
                    sums[name] += float(value) / batches
    return dict(sums), loaded.missing_keys


def main(argv=None) -> None:
    args = parse_args(argv)
    MMLogger.get_instance('start_losses', log_level='WARNING')  # no per-weight init log
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    results = []
    for checkpoint in args.checkpoints:
        losses, missing = start_losses(cfg, checkpoint, args.batches, args.batch_size, args.amp)
        results.append(losses)
        print(f'{checkpoint}: {len(missing)} keys initialised by the model: {missing}')
    names = sorted(set().union(*results))
    width = max(len(str(c.name)) for c in args.checkpoints)
    print(f'{"term":<18} ' + ' '.join(f'{c.name:>{width}}' for c in args.checkpoints))
    rows = [(name, [r.get(name, float('nan')) for r in results]) for name in names]
    rows.append(
        (
            'detection',
            [sum(v for k, v in r.items() if k.startswith(DETECTION_TERMS)) for r in results],
        )
    )
    rows.append(('total', [sum(r.values()) for r in results]))
    for name, values in rows:
        print(f'{name:<18} ' + ' '.join(f'{v:>{width}.3f}' for v in values))


if __name__ == '__main__':
    run_tool('start_losses', main)
