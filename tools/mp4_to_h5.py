"""Copy raw scenes with their mp4 RGB stored as JPEG frames in h5, for faster training.

python tools/mp4_to_h5.py SCENE [SCENE ...] --out DIR [--quality 92]

Each SCENE is written to DIR/<scene name> in the same layout, every ``videos/<Camera>.mp4``
as ``<Camera>.h5`` (``rgb/rgb_%05d.jpg``), calibration, ground truth and depth hard-linked.
Then run ``tools/create_data.py`` on the copies. Data workers read a frame from h5 with one
JPEG decode; from mp4 they decode the frames since their last read or a keyframe
(docs/performance.md, Data loading). The JPEGs are a second lossy encoding of the video's
frames: at quality 92 the pixels differ by about 1 level on average.
"""

import argparse
from pathlib import Path

from mmsparse4d.datasets.converters.mp4_to_h5 import transcode_scene_rgb
from mmsparse4d.utils.input_error import InputError, run_tool
from mmsparse4d.utils.output_paths import check_output_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scenes', nargs='+', type=Path, help='raw scene folders')
    parser.add_argument('--out', required=True, type=Path, help='folder for the copies')
    parser.add_argument('--quality', type=int, default=92, help='JPEG quality, 1-100')
    args = parser.parse_args(argv)
    check_output_dir(args.out, '--out')
    targets = [args.out / scene.resolve().name for scene in args.scenes]
    if len(set(targets)) < len(targets):
        names = [target.name for target in targets]
        raise InputError(f'two scenes share a folder name ({names}); their copies would collide')
    if not 1 <= args.quality <= 100:
        raise InputError(f'--quality {args.quality}: must be 1-100')
    for scene, target in zip(args.scenes, targets, strict=True):  # before the first copy
        if not (scene / 'calibration.json').is_file():
            raise InputError('not a raw scene: no calibration.json', scene)
        if target.exists():
            raise InputError('exists; choose a new --out', target)
    for scene, target in zip(args.scenes, targets, strict=True):
        cameras = transcode_scene_rgb(scene, target, args.quality)
        print(f'{scene} -> {target}: {len(cameras)} videos transcoded')


if __name__ == '__main__':
    run_tool('mp4_to_h5', main)
