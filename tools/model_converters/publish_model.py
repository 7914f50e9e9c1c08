"""Slim a training checkpoint for release: weights and metadata only, optionally half
precision, named with the first 8 hex digits of its SHA-256 (mmdet's convention).

    python tools/model_converters/publish_model.py work_dirs/x/iter_4000.pth \
        checkpoints/sparse4d_oae_small_synthetic.pth --fp16

The result loads with ``torch.load(weights_only=True)``. Anchors and batch-norm statistics
stay float32 (anchor centres are metres: half precision would round 20 m to 1.6 cm steps).
"""

import argparse
import hashlib
import pickle
from pathlib import Path

import torch

from mmsparse4d.utils.input_error import InputError, run_tool

KEEP_FLOAT32 = ('anchor', 'running_mean', 'running_var')


def load_problem(error: Exception) -> str:
    """torch.load's error in one line: for weights-only loading, the unpickler's own words
    (the rest of its message explains the weights_only default)."""
    text = str(error)
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1].split('Check the documentation')[0]
    return ' '.join(text.split()) or type(error).__name__


def publish(source: Path, target: Path, fp16: bool) -> Path:
    if not source.is_file():
        raise InputError('checkpoint not found', path=source)
    try:
        checkpoint = torch.load(source, map_location='cpu', weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        raise InputError(f'not a readable checkpoint: {load_problem(error)}', path=source) from None
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise InputError('no state_dict: not a training checkpoint', path=source)
    state = {}
    for key, value in checkpoint['state_dict'].items():
        if fp16 and value.is_floating_point() and not key.endswith(KEEP_FLOAT32):
            value = value.half()
        state[key] = value
    meta = {k: v for k, v in checkpoint.get('meta', {}).items() if k != 'message_hub'}
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix('.tmp')
    torch.save({'state_dict': state, 'meta': meta}, temporary)
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()[:8]
    final = target.with_name(f'{target.stem}-{digest}{target.suffix}')
    temporary.rename(final)
    return final


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', type=Path)
    parser.add_argument('out', type=Path, help='target path; the hash is added to the name')
    parser.add_argument('--fp16', action='store_true', help='store weights in half precision')
    args = parser.parse_args(argv)
    final = publish(args.checkpoint, args.out, args.fp16)
    print(f'{final} ({final.stat().st_size / 2**20:.1f} MiB)')


if __name__ == '__main__':
    run_tool('publish_model', main)
