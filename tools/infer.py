"""Track objects through a raw scene folder (AI City 2025 / Isaac Sim layout) with a trained
model; write the AI City submission text, NVSchema JSON lines and per-frame predictions.

    python tools/infer.py CONFIG CHECKPOINT SCENE_DIR --out-dir OUT [--device cuda]
        [--backend pytorch|cudagraph|onnxruntime|tensorrt] [--precision fp32|fp16|bf16]
        [--scene-id 0] [--origin X Y Z] [--score-threshold 0.2] [--frames N] [--cameras ...]
        [--no-track-smoothing]

Outputs: OUT/<scene>_submission.txt, OUT/<scene>_nvschema.jsonl, OUT/<scene>_tracks.npz
(per-frame boxes, scores, labels and track ids, for tools/visualize.py). Everything is
checked (config, checkpoint, scene, cameras) before the first frame runs.

The NVSchema lines and the ``_tracks.npz`` hold the boxes as the tracker reported them,
frame by frame, as a live deployment would stream them. The submission is written once the
scene is tracked, so where the config sets ``track_smoothing`` its boxes are smoothed over
their tracks' neighbouring frames first (``evaluation.functional.track_smoothing``: centres
from a local line, sizes from the track's median, yaws from their axial mean, and with a
``floor_height`` every box standing on that floor); ``--no-track-smoothing`` writes them as
tracked. Where the tracked boxes' bottoms lie far from that floor (a site whose floor is
not at the config's height) a warning says so with both heights.
"""

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from mmsparse4d.datasets.aicity import RawScene
from mmsparse4d.deploy.names import BACKENDS, PRECISION_NAMES
from mmsparse4d.engine.cfg_options import check_cfg_options
from mmsparse4d.evaluation.functional.track_smoothing import check_track_smoothing, smooth_tracks
from mmsparse4d.evaluation.writers import (
    CLASS_IDS,
    nvschema_frame,
    one_class_per_track,
    write_nvschema,
    write_submission,
)
from mmsparse4d.evaluation.writers.aicity_submission import (
    HEIGHT,
    SIZE,
    SMALLEST_WRITTEN_SIZE,
    Z,
)
from mmsparse4d.utils.devices import check_device
from mmsparse4d.utils.input_error import InputError, run_tool
from mmsparse4d.utils.output_paths import check_output_dir

if TYPE_CHECKING:
    from mmsparse4d.models.task_modules.track_stitcher import TrackStitcher


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument(
        'checkpoint',
        help='.pth weights (pytorch, cudagraph), or with --backend onnxruntime the '
        '.onnx file from tools/export.py, with tensorrt the .engine',
    )
    parser.add_argument(
        '--backend',
        choices=BACKENDS,
        default='pytorch',
        help="pytorch (the model), cudagraph (the model's frame graph replayed as a CUDA "
        'graph), onnxruntime or tensorrt (an exported graph); all but pytorch run behind the '
        'host-side tracker',
    )
    parser.add_argument(
        '--precision',
        choices=sorted(PRECISION_NAMES),
        default='fp32',
        help='autocast precision of --backend cudagraph',
    )
    parser.add_argument('--trt-plugin', help='the nv::MSDA TensorRT plugin (--backend tensorrt)')
    parser.add_argument('scene', help='raw scene folder')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--scene-id', type=int, default=0, help='scene id in the submission')
    parser.add_argument(
        '--origin',
        type=float,
        nargs=3,
        metavar=('X', 'Y', 'Z'),
        help="the model frame's origin in the world, metres (default: the centre of the "
        "cameras' floor footprint, the origin tools/create_data.py re-centres them on)",
    )
    parser.add_argument(
        '--overwrite', action='store_true', help='replace results of this scene in --out-dir'
    )
    parser.add_argument('--score-threshold', type=float, default=0.2)
    parser.add_argument('--frames', type=int, help='only the first N frames')
    parser.add_argument('--cameras', nargs='+', help='a subset of the calibrated cameras')
    parser.add_argument(
        '--no-track-smoothing',
        action='store_true',
        help="write the submission's boxes as tracked, without the config's track_smoothing",
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override config settings, e.g. model.head.decoder.track_stitching.min_score=0.1',
    )
    return parser.parse_args(argv)


def check_score_threshold(
    cfg: Config, threshold: float, config_path: str
) -> 'TrackStitcher | None':
    """Boxes below the track stitching's ``min_score`` get no track id, which the
    submission cannot hold: refuse such a ``--score-threshold`` before any frame runs.
    Returns the config's stitcher (a ``TrackStitcher``; ``None`` without stitching), which
    says which boxes are reported (``TrackStitcher.reported``: a track's continuation below
    ``min_score`` too)."""
    # Imported here, as the tracker below: the model's modules take seconds, and the
    # arguments are checked before them.
    from mmsparse4d.models.task_modules.track_stitcher import TrackStitcher

    stitching = cfg.model.head.decoder.get('track_stitching')
    if not stitching:
        return None
    try:
        stitcher = TrackStitcher(**stitching)
    except (TypeError, ValueError) as error:
        raise InputError(f'model.head.decoder.track_stitching: {error}', config_path) from None
    min_score = stitcher.min_score  # the stitcher's own default too
    if threshold < min_score:
        raise InputError(
            f"infer: --score-threshold {threshold} is below the track stitching's min_score "
            f'{min_score} ({config_path}: model.head.decoder.track_stitching.min_score), so '
            'boxes between the two would have no track id; raise --score-threshold or lower '
            f'it with --cfg-options model.head.decoder.track_stitching.min_score={threshold}'
        )
    return stitcher


# Tracked boxes' bottoms scatter by centimetres about the floor they stand on; a median
# further than this from the config's floor_height means another floor.
FLOOR_TOLERANCE = 0.15  # metres


def check_floor(table: np.ndarray, floor_height: float | None, config_path: str) -> None:
    """Warn where the tracked boxes' bottoms (centre z - height / 2, median over the [R, 11]
    rows) lie more than ``FLOOR_TOLERANCE`` from ``floor_height``: the smoothing would move
    every box onto a floor the site does not have."""
    if floor_height is None or len(table) == 0:
        return
    bottoms = float(np.median(table[:, Z] - table[:, HEIGHT] / 2))
    if abs(bottoms - floor_height) > FLOOR_TOLERANCE:
        print_log(
            f'infer: the tracked boxes stand at a median z of {bottoms:.2f} m, the config '
            f"puts the floor at {floor_height:g} m ({config_path}'s track_smoothing.floor_height): "
            'every submitted box is moved onto that floor; set it to your floor with '
            f'--cfg-options track_smoothing.floor_height={bottoms:.2f}, or None to keep the '
            'tracked heights',
            logger='current',
            level=logging.WARNING,
        )


def track_smoothing(cfg: Config, config_path: str, disabled: bool) -> dict | None:
    """The config's ``track_smoothing`` settings (``smooth_tracks`` keywords), checked before
    any frame runs; ``None`` when the config has none or ``--no-track-smoothing`` is given."""
    settings = cfg.get('track_smoothing')
    if not settings or disabled:
        return None
    try:
        return check_track_smoothing(settings)
    except ValueError as error:
        raise InputError(f'track_smoothing={dict(settings)}: {error}', config_path) from None


def build_tracker(cfg: Config, args):
    """``Sparse4DTracker`` on the back end of ``--backend`` (same results up to the
    runtime's arithmetic)."""
    if args.precision != 'fp32' and args.backend != 'cudagraph':
        raise InputError(
            f'infer: --precision {args.precision} is for --backend cudagraph '
            f'(got --backend {args.backend})'
        )
    options = {}
    if args.backend == 'cudagraph':
        if not args.device.startswith('cuda'):
            raise InputError(f'infer: --backend cudagraph needs --device cuda, got {args.device}')
        options['precision'] = args.precision
    if args.backend in ('onnxruntime', 'tensorrt'):
        expected = {'onnxruntime': '.onnx', 'tensorrt': '.engine'}[args.backend]
        if Path(args.checkpoint).suffix != expected:
            raise InputError(
                f'infer: --backend {args.backend} takes a {expected} file (tools/export.py'
                f'{"" if expected == ".onnx" else " then build_tensorrt_engine.py"}), '
                f'got {args.checkpoint}'
            )
    if args.backend == 'tensorrt':
        if not args.trt_plugin:
            raise InputError('infer: --backend tensorrt needs --trt-plugin (the nv::MSDA plugin)')
        options['plugin_library'] = args.trt_plugin
    from mmsparse4d.apis import Sparse4DTracker

    return Sparse4DTracker(cfg, args.checkpoint, args.device, args.backend, **options)


def output_paths(out_dir: Path, scene_name: str) -> dict[str, Path]:
    return {
        'submission': out_dir / f'{scene_name}_submission.txt',
        'nvschema': out_dir / f'{scene_name}_nvschema.jsonl',
        'tracks': out_dir / f'{scene_name}_tracks.npz',
    }


def check_outputs(outputs: dict[str, Path], out_dir: Path, overwrite: bool) -> None:
    """Refuse an --out-dir that is a file, or one holding this scene's results (unless
    --overwrite), before any frame runs."""
    check_output_dir(out_dir, '--out-dir')
    present = [path for path in outputs.values() if path.exists()]
    if present and not overwrite:
        raise InputError(
            f'holds results of this scene already ({", ".join(p.name for p in present)}); '
            'choose another --out-dir or pass --overwrite',
            out_dir,
        )


def infer(args) -> dict:
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not Path(path).is_file():
            raise InputError(f'{what} not found', path)
    if args.frames is not None and args.frames < 1:
        raise InputError(f'--frames {args.frames}: track at least 1 frame')
    if args.scene_id < 0:
        raise InputError(f'--scene-id {args.scene_id}: must be >= 0')
    check_device(args.device)
    scene = RawScene(args.scene, cameras=args.cameras)  # checks the calibration
    out_dir = Path(args.out_dir)
    outputs = output_paths(out_dir, scene.name)
    check_outputs(outputs, out_dir, args.overwrite)
    # Every camera's video must hold every frame asked for: found now, not after minutes.
    frames = scene.check(args.frames)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(check_cfg_options(cfg, args.cfg_options))
    stitcher = check_score_threshold(cfg, args.score_threshold, args.config)
    smoothing = track_smoothing(cfg, args.config, args.no_track_smoothing)
    tracker = build_tracker(cfg, args)
    unknown = set(tracker.class_names) - set(CLASS_IDS)
    if unknown:
        raise InputError(
            f'the model predicts classes {sorted(unknown)} that the AI City '
            'submission format lacks',
            args.config,
        )
    cameras = scene.cameras
    if len(cameras) > tracker.max_num_cams:
        raise InputError(
            f'{len(cameras)} cameras, the model takes at most '
            f'{tracker.max_num_cams}; choose some with --cameras',
            scene.root,
        )
    intrinsics = np.stack([scene.calibration[c].intrinsic for c in cameras])
    world_to_camera = np.stack([scene.calibration[c].world_to_camera for c in cameras])
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, scores, nvschema, per_frame = [], [], [], []
    start = time.perf_counter()
    for frame in range(frames):
        images = [scene.rgb(camera, frame) for camera in cameras]
        result = tracker(
            images,
            intrinsics,
            world_to_camera,
            frame / scene.fps,
            scene.name,
            args.origin,
            frame,
            cameras,
        )
        keep = (
            stitcher.reported(result['scores_3d'], result['track_ids'], args.score_threshold)
            if stitcher is not None
            else result['scores_3d'] >= args.score_threshold
        )
        boxes = result['bboxes_3d'][keep]
        labels = result['labels_3d'][keep]
        tracks = result['track_ids'][keep]
        names = result['class_names'][keep]
        per_frame.append(
            {
                'bboxes_3d': boxes,
                'scores_3d': result['scores_3d'][keep],
                'labels_3d': labels,
                'track_ids': tracks,
            }
        )
        for box, name, track, score in zip(
            boxes, names, tracks, result['scores_3d'][keep], strict=True
        ):
            rows.append([args.scene_id, CLASS_IDS[name], int(track), frame, *box[:7]])
            scores.append(score)
        embeddings = result['reid_feats'][keep] if 'reid_feats' in result else None
        nvschema.append(
            nvschema_frame(
                frame,
                scene.name,
                boxes[:, :7],
                result['scores_3d'][keep],
                list(names),
                tracks,
                scene.fps,
                embeddings,
            )
        )
        if frame % 50 == 0 or frame == frames - 1:
            rate = (frame + 1) / (time.perf_counter() - start)
            print(
                f'frame {frame + 1}/{frames}: {int(keep.sum())} tracked objects '
                f'({rate:.1f} frames/s)',
                flush=True,
            )
    table, mixed = one_class_per_track(
        np.array(rows, dtype=np.float64).reshape(-1, 11), np.array(scores)
    )
    if mixed:
        print(
            f'{mixed} tracks changed class between frames: each keeps its class of largest '
            'summed score (one class per id in the submission)'
        )
    if smoothing:
        check_floor(table, smoothing.get('floor_height'), args.config)
        table = smooth_tracks(table, **smoothing)
        print(
            f"submission: tracks smoothed over their frames ({args.config}'s track_smoothing="
            f'{smoothing}); --no-track-smoothing writes them as tracked'
        )
    sizes = table[:, SIZE]
    tiny = sizes < SMALLEST_WRITTEN_SIZE
    if tiny.any():
        # Two decimals would write them as 0.00, a box the scorer's 3D IoU cannot use.
        table[:, SIZE] = np.maximum(sizes, 0.01)
        count = int(tiny.any(axis=1).sum())
        print(
            f'{count} boxes with a side under {SMALLEST_WRITTEN_SIZE} m: written with '
            '0.01 m sides in the submission'
        )
    write_submission(outputs['submission'], table)
    write_nvschema(outputs['nvschema'], nvschema)
    arrays = {}
    for index, frame_result in enumerate(per_frame):
        for key, value in frame_result.items():
            arrays[f'{index}/{key}'] = value
    np.savez_compressed(outputs['tracks'], frames=frames, scene=scene.name, **arrays)
    scene.close()
    for name, path in outputs.items():
        print(f'{name}: {path}')
    return outputs


def main(argv=None):
    infer(parse_args(argv))


if __name__ == '__main__':
    run_tool('infer', main)
