"""Convert an NVIDIA TAO Sparse4D checkpoint (NGC's sparse4d_rn101 / sparse4d_rn50, or any
TAO training run; also HorizonRobotics Sparse4D v3's mmdet3d layout) for an mmsparse4d
config with TAO's architecture.

    python tools/model_converters/tao_to_mmsparse4d.py sparse4d_rn101.pth \
        configs/sparse4d/sparse4d_tao_r101_1408x512.py checkpoints/sparse4d_tao_r101.pth \
        [--anchors anchor_init_kmeans900.npy]

The key mapping and what is filled or left out: mmsparse4d/engine/tao_checkpoint.py. A
checkpoint that does not fit the config (class count, camera embedding or camera slots,
missing or unexpected weights, another shape) is refused in one line naming the key and
both shapes, before anything is written. The output loads with
``torch.load(weights_only=True)``, with ``tools/test.py CONFIG OUT`` and as ``load_from``.
"""

import argparse
from pathlib import Path

from mmsparse4d.engine.cli import read_config
from mmsparse4d.engine.tao_checkpoint import tao_to_mmsparse4d
from mmsparse4d.utils.input_error import InputError, run_tool
from mmsparse4d.utils.output_paths import check_output_file


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', type=Path, help='the TAO checkpoint (.pth / .ckpt)')
    parser.add_argument('config', help='the mmsparse4d config with the same architecture')
    parser.add_argument('out', type=Path, help='the mmsparse4d checkpoint to write')
    parser.add_argument(
        '--anchors',
        type=Path,
        help='the k-means anchors .npy the model was trained from: needed only when the '
        'checkpoint holds none (its own, learned ones are used otherwise)',
    )
    args = parser.parse_args(argv)
    if args.out.resolve() == args.checkpoint.resolve():
        raise InputError('OUT is the input checkpoint; write a new file', path=args.out)
    check_output_file(args.out, 'OUT')
    report = tao_to_mmsparse4d(args.checkpoint, read_config(args.config), args.out, args.anchors)
    print(report.summary())


if __name__ == '__main__':
    run_tool('tao_to_mmsparse4d', main)
