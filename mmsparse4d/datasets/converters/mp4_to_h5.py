"""A copy of a raw scene whose mp4 RGB is stored as JPEG frames in h5.

From an mp4 a read decodes the frames since the last read or since a keyframe, from an h5
of JPEGs it decodes one image, so the data loader delivers more samples from h5
(docs/performance.md, Data loading). The copy keeps the layout that
``RawScene`` reads: ``<Camera>.h5`` with ``rgb/rgb_%05d.jpg`` per frame; calibration, ground
truth and depth files are hard-linked (copied where the file system cannot link).
"""

import os
import shutil
from pathlib import Path

import h5py
from mmengine.logging import print_log

from ...utils.input_error import InputError
from ..aicity import Mp4Reader, RawScene
from ..aicity.rgb_h5_writer import write_rgb_jpeg


def _place(source: Path, target: Path, link: bool) -> None:
    """``source`` at ``target``: hard-linked where allowed and the file system can, else
    copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return
        except OSError:  # another file system, or links not allowed
            pass
    shutil.copy2(source, target)


def transcode_scene_rgb(scene_dir: str | Path, out_dir: str | Path, quality: int = 92) -> dict:
    """Write ``out_dir``: the scene with every camera's ``videos/<Camera>.mp4`` as
    ``<Camera>.h5`` JPEG frames (``quality`` 1-100), everything else linked.

    The scene is read and checked first (``RawScene``: calibration, ground truth, equal
    video lengths), and the copy is written to ``<out_dir>.partial`` and renamed when
    complete, so an interrupted run leaves no scene that looks whole.

    A camera whose depth lives in ``<Camera>.h5`` (no ``rgb/`` group in it) gets a copy of
    that file with the ``rgb/`` frames added.

    Returns:
        dict: frames transcoded per camera (cameras already in h5 are linked, not listed).

    Raises:
        InputError: ``out_dir`` exists, ``quality`` is outside 1-100, or a camera has both
            an mp4 and an ``rgb/`` group in ``<Camera>.h5`` (two RGB sources).
    """
    scene_dir, out_dir = Path(scene_dir), Path(out_dir)
    if not 1 <= quality <= 100:
        raise InputError(f'--quality {quality}: must be 1-100')
    if out_dir.exists():
        raise InputError('exists; choose a new folder for the transcoded scene', out_dir)
    scene = RawScene(scene_dir)
    frames = scene.num_frames
    videos = {c: scene_dir / 'videos' / f'{c}.mp4' for c in scene.cameras}
    videos = {c: path for c, path in videos.items() if path.is_file()}
    shared_h5 = []  # cameras whose <Camera>.h5 (depth) receives the RGB frames
    for camera in videos:
        h5 = scene_dir / f'{camera}.h5'
        if h5.is_file():
            with h5py.File(h5, 'r') as file:
                if 'rgb' in file:
                    raise InputError(
                        f'camera {camera!r} has two RGB sources, videos/{camera}.mp4 and the '
                        f'rgb/ group of {camera}.h5; remove one',
                        scene_dir,
                    )
            shared_h5.append(h5)
    partial = out_dir.with_name(out_dir.name + '.partial')
    if partial.exists():
        shutil.rmtree(partial)  # left by an interrupted run of this function
    for source in sorted(scene_dir.rglob('*')):
        relative = source.relative_to(scene_dir)
        if source.is_file() and relative.parts[0] != 'videos':
            # A file that receives RGB frames is copied, so the source stays as it was.
            _place(source, partial / relative, link=source not in shared_h5)
    for camera, video in videos.items():
        reader = Mp4Reader(video)
        try:
            with h5py.File(partial / f'{camera}.h5', 'a') as file:
                for frame in range(frames):
                    write_rgb_jpeg(file, frame, reader.read(frame), quality)
        finally:
            reader.close()
        print_log(f'mp4_to_h5: {video} -> {camera}.h5, {frames} frames', 'current')
    partial.rename(out_dir)
    return {camera: frames for camera in videos}


__all__ = ['transcode_scene_rgb']
