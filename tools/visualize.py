"""Draw tracked boxes over a raw scene: each camera with projected boxes coloured by track
id, and a bird's-eye view with trajectories and the ground truth; one PNG per frame and an
mp4.

    python tools/visualize.py SCENE_DIR TRACKS_NPZ --out-dir OUT [--fps 10] [--every 1]

TRACKS_NPZ is what tools/infer.py writes (<scene>_tracks.npz).
"""

import argparse
from pathlib import Path

import cv2
import numpy as np

from mmsparse4d.datasets.aicity import RawScene
from mmsparse4d.utils.input_error import InputError, run_tool
from mmsparse4d.utils.output_paths import check_output_dir
from mmsparse4d.visualization import compose, draw_bev, draw_camera


def visualize(scene_dir, tracks_path, out_dir, fps: float = 10.0, every: int = 1) -> dict:
    """Draw every ``every``-th frame of ``tracks_path`` (``tools/infer.py``'s
    ``<scene>_tracks.npz``) over the raw scene; ``fps`` is the video's frame rate (frames/s).
    """
    tracks_path = Path(tracks_path)
    if not tracks_path.is_file():
        raise InputError('tracks file not found', path=tracks_path)
    if fps <= 0 or every < 1:
        raise InputError(f'--fps must be > 0 and --every >= 1, got {fps:g} and {every}')
    try:
        tracks = np.load(tracks_path)
        frames = int(tracks['frames'])
    except (OSError, ValueError, KeyError):
        # np.load's own advice for a text file (allow_pickle) would mislead here.
        raise InputError(
            'not a tracks file of tools/infer.py (<scene>_tracks.npz, not the submission)',
            path=tracks_path,
        ) from None
    scene = RawScene(scene_dir)
    # Written by tools/infer.py since it names the scene; older files are not checked.
    tracked = str(tracks['scene']) if 'scene' in tracks.files else None
    if tracked is not None and tracked != scene.name:
        raise InputError(
            f'tracks of scene {tracked!r}, not of {scene.name!r} ({scene.root})', path=tracks_path
        )
    if frames > scene.num_frames:
        raise InputError(
            f'{frames} frames, but the scene {scene.root} has {scene.num_frames}: tracks of '
            'another scene?',
            path=tracks_path,
        )
    out_dir = Path(out_dir)
    check_output_dir(out_dir / 'frames', '--out-dir')
    (out_dir / 'frames').mkdir(parents=True, exist_ok=True)
    stale = sorted((out_dir / 'frames').glob('[0-9][0-9][0-9][0-9][0-9].png'))
    if stale:
        # Pictures of an earlier run would be mixed with this one's.
        for path in stale:
            path.unlink()
        print(f'{len(stale)} pictures of an earlier run removed from {out_dir / "frames"}')
    cameras = [scene.calibration[c] for c in scene.cameras]
    points = [c.center[:2] for c in cameras]
    if scene.ground_truth:
        points += [o.location[:2] for objs in scene.ground_truth.values() for o in objs]
    points = np.array(points)
    low, high = points.min(0) - 2, points.max(0) + 2
    bounds = (low[0], low[1], high[0], high[1])
    history: dict[int, list] = {}
    writer, video = None, out_dir / f'{scene.name}_tracks.mp4'
    pictures = []
    for frame in range(0, frames, every):
        boxes, ids = tracks[f'{frame}/bboxes_3d'], tracks[f'{frame}/track_ids']
        for box, track in zip(boxes, ids, strict=True):
            history.setdefault(int(track), []).append(box[:2])
        images = [draw_camera(scene.rgb(c.name, frame), c, boxes, ids) for c in cameras]
        gt = None
        if scene.ground_truth is not None:
            gt = np.array([[*o.location, *o.scale, o.yaw] for o in scene.objects(frame)])
        picture = compose(images, draw_bev(boxes, ids, history, cameras, bounds, gt_boxes=gt))
        bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
        path = out_dir / 'frames' / f'{frame:05d}.png'
        cv2.imwrite(str(path), bgr)
        pictures.append(path)
        if writer is None:
            fourcc = cv2.VideoWriter_fourcc(*'mp4v')
            writer = cv2.VideoWriter(str(video), fourcc, fps, (bgr.shape[1], bgr.shape[0]))
        writer.write(bgr)
    if writer is not None:
        writer.release()
    scene.close()
    return {'frames': out_dir / 'frames', 'video': video, 'count': len(pictures)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('scene')
    parser.add_argument('tracks')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--fps', type=float, default=10.0)
    parser.add_argument('--every', type=int, default=1, help='draw every n-th frame')
    args = parser.parse_args(argv)
    result = visualize(args.scene, args.tracks, args.out_dir, args.fps, args.every)
    print(f'{result["count"]} pictures in {result["frames"]}, video {result["video"]}')


if __name__ == '__main__':
    run_tool('visualize', main)
