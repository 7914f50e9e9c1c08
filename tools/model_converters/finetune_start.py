"""A checkpoint to fine-tune from on another training set: its anchors replaced by the new
set's (or kept), and the weights whose meaning depends on the old set (the
re-identification classifier over asset ids) left out.

    python tools/model_converters/finetune_start.py CHECKPOINT OUT \
        [--anchors data/protocol/ovpkl/train/anchor_init_kmeans300.npy] \
        [--drop head.reid_branch.bnneck.classifier] [--keep img_backbone img_neck]

``--keep`` keeps only the weights under the given prefixes (and the anchors): a start
whose image features are trained and whose head is not, as the paper's ablation uses for
both of its arms (docs/evaluation.md).

``load_from`` restores a checkpoint's learned anchors over the config's anchor file, so
without ``--anchors`` a fine-tuning run keeps the anchors of the first training set's
floors and sizes, which its queries were trained with: new k-means anchors raise the
shipped model's detection loss on the protocol's scenes by two thirds (docs/training.md).
The dropped keys are listed; the model initialises them (mmengine reports them as missing
when it loads the file). Writes a weights-only float32 checkpoint (the
weights as stored, upcast) that ``torch.load(weights_only=True)`` reads.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from mmsparse4d.engine.checkpoint_files import read_checkpoint
from mmsparse4d.engine.checkpoint_settings import ANCHOR_KEY
from mmsparse4d.utils.input_error import InputError, run_tool

DEFAULT_DROP = ('head.reid_branch.bnneck.classifier',)


def finetune_start(
    source: Path, anchors_file: Path | None, target: Path, drop=DEFAULT_DROP, keep=None
) -> list[str]:
    """Write ``target``; returns the keys left out. ``anchors_file`` None keeps the
    checkpoint's learned anchors; ``keep`` (key prefixes) leaves out every weight but
    those under it and the anchors."""
    checkpoint = read_checkpoint(source)
    state = checkpoint.get('state_dict') if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or ANCHOR_KEY not in state:
        raise InputError(
            f'holds no state_dict with {ANCHOR_KEY}: not a Sparse4D checkpoint', path=source
        )
    old = state[ANCHOR_KEY]
    anchors = old.float()
    if anchors_file is not None:
        anchors = _read_anchors(anchors_file)
    if anchors.shape != old.shape:
        raise InputError(
            f"anchors of shape {tuple(anchors.shape)}, the checkpoint's {ANCHOR_KEY} has "
            f'{tuple(old.shape)}: the config must keep num_anchor',
            path=anchors_file,
        )
    for option, prefixes in (('--drop', drop), ('--keep', keep or ())):
        for prefix in prefixes:
            if not any(key.startswith(prefix) for key in state):
                raise InputError(f'{option} {prefix}: no such key in the checkpoint', path=source)
    dropped = [
        key
        for key in state
        if key.startswith(tuple(drop))
        or (keep is not None and key != ANCHOR_KEY and not key.startswith(tuple(keep)))
    ]
    weights = {
        key: value.float() if value.is_floating_point() else value
        for key, value in state.items()
        if key not in dropped
    }
    weights[ANCHOR_KEY] = anchors
    meta = dict(
        checkpoint.get('meta', {}),
        finetune_start=dict(
            source=source.name,
            anchors=str(anchors_file) if anchors_file is not None else 'learned (kept)',
            dropped=dropped,
            kept=list(keep) if keep is not None else 'all but the dropped',
        ),
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'state_dict': weights, 'meta': meta}, target)
    return dropped


def _read_anchors(path: Path) -> torch.Tensor:
    if not path.is_file():
        raise InputError('anchor file not found', path=path)
    try:
        return torch.from_numpy(np.load(path)).float()
    except (OSError, ValueError) as error:
        raise InputError(f'not a .npy array: {error}', path=path) from None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', type=Path)
    parser.add_argument('out', type=Path)
    parser.add_argument(
        '--anchors',
        type=Path,
        help="the new anchors, [A, 11] .npy (default: keep the checkpoint's learned anchors)",
    )
    parser.add_argument(
        '--drop',
        nargs='*',
        default=list(DEFAULT_DROP),
        help='key prefixes left out (default: %(default)s)',
    )
    parser.add_argument(
        '--keep',
        nargs='+',
        help='keep only the weights under these key prefixes, and the anchors (default: all)',
    )
    args = parser.parse_args(argv)
    if args.out.resolve() == args.checkpoint.resolve():
        raise InputError('OUT is the input checkpoint; write a new file', path=args.out)
    dropped = finetune_start(args.checkpoint, args.anchors, args.out, args.drop, args.keep)
    if args.keep is None:
        left_out = ', '.join(dropped) or 'none'
    else:
        left_out = f'all but those under {", ".join(args.keep)} and the anchors'
    anchors = args.anchors or "the checkpoint's learned anchors, kept"
    print(f'{args.out}: anchors from {anchors}; left out {len(dropped)} keys: {left_out}')


if __name__ == '__main__':
    run_tool('finetune_start', main)
