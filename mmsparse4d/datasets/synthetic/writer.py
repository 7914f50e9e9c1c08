"""Writing a synthetic scene in the raw AI City 2025 layout.

::

    <out>/calibration.json  ground_truth.json
          videos/<Camera>.mp4                (rgb_format='mp4')
          <Camera>.h5: rgb/rgb_%05d.jpg      (rgb_format='h5', Isaac Sim post-processed layout)
          depth_maps/<Camera>.h5             uint16 mm, distance_to_image_plane_%05d.png
"""

import json
import os
from multiprocessing import get_context
from pathlib import Path

import cv2
import h5py
import numpy as np

from ...utils.pyav import import_pyav
from ..aicity.calibration import CameraCalibration
from ..aicity.frame_readers import DEPTH_ROOT_KEY, RGB_KEY
from ..aicity.rgb_h5_writer import write_rgb_jpeg
from .object_shapes import PARTS
from .renderer import CameraRenderer, ObjectPixels
from .scene_model import Box, SceneModel, make_scene_model

RGB_FORMATS = ('h5', 'mp4')


def frame_boxes(scene: SceneModel, frame: int) -> list[tuple[Box, np.ndarray]]:
    """The moving objects of ``frame`` as boxes, with their velocities [3]."""
    boxes = []
    for obj in scene.objects:
        location, yaw, velocity = obj.state(frame / scene.fps)
        parts = PARTS[obj.class_name] if scene.shapes == 'parts' else None
        box = Box(location, obj.scale, yaw, obj.color, obj.accent, obj.accent_top, parts)
        boxes.append((box, velocity))
    return boxes


def _calibration_json(scene: SceneModel) -> dict:
    sensors = []
    for camera in scene.cameras:
        extrinsic = camera.world_to_camera[:3]
        camera_matrix = camera.intrinsic @ extrinsic
        forward = camera.world_to_camera[2, :3]
        center = camera.center
        sensors.append(
            {
                'type': 'camera',
                'id': camera.name,
                'coordinates': {'x': round(float(center[0]), 4), 'y': round(float(center[1]), 4)},
                'scaleFactor': 20.0,
                'translationToGlobalCoordinates': {
                    'x': scene.floor_size[0] / 2,
                    'y': scene.floor_size[1] / 2,
                },
                # Strings, as some real files have them: readers must cast.
                'attributes': [
                    {'name': 'fps', 'value': str(camera.fps)},
                    {
                        'name': 'direction',
                        'value': float(np.degrees(np.arctan2(forward[1], forward[0]))),
                    },
                    {'name': 'direction3d', 'value': ','.join(f'{v:.4f}' for v in forward)},
                    {'name': 'frameWidth', 'value': str(camera.width)},
                    {'name': 'frameHeight', 'value': str(camera.height)},
                ],
                'intrinsicMatrix': camera.intrinsic.tolist(),
                'extrinsicMatrix': extrinsic.tolist(),
                'cameraMatrix': camera_matrix.tolist(),
                'homography': camera_matrix[:, [0, 1, 3]].tolist(),
            }
        )
    return {'calibrationType': 'cartesian', 'sensors': sensors}


def _write_rgb_h5(file: h5py.File, frame: int, rgb: np.ndarray, encode: bool) -> None:
    if encode:
        write_rgb_jpeg(file, frame, rgb, quality=92)
    else:
        bgr = rgb[..., ::-1]
        file.create_dataset(RGB_KEY.format(frame), data=bgr, compression='gzip', compression_opts=1)


def _render_camera(job) -> list[list[ObjectPixels]]:
    """Render and write one camera's frames; returns its ObjectPixels per frame and object."""
    out, scene, camera_index, seed, rgb_format, encode_h5 = job
    camera: CameraCalibration = scene.cameras[camera_index]
    renderer = CameraRenderer(scene, camera, texture_seed=seed)
    per_frame = []
    depth_file = h5py.File(out / 'depth_maps' / f'{camera.name}.h5', 'w')
    rgb_file = h5py.File(out / f'{camera.name}.h5', 'w') if rgb_format == 'h5' else None
    video = stream = None
    if rgb_format == 'mp4':
        av = import_pyav('--rgb-format mp4')
        video = av.open(str(out / 'videos' / f'{camera.name}.mp4'), 'w')
        stream = video.add_stream('libx264', rate=int(round(scene.fps)))
        stream.width, stream.height, stream.pix_fmt = camera.width, camera.height, 'yuv420p'
        # No B-frames: decode order is presentation order (as NVIDIA's toolkit encodes).
        stream.codec_context.options = {'bf': '0', 'g': '30', 'crf': '18', 'preset': 'veryfast'}
    try:
        for frame in range(scene.num_frames):
            boxes = [box for box, _ in frame_boxes(scene, frame)]
            rgb, depth, pixels = renderer.render(boxes)
            per_frame.append(pixels)
            millimetres = np.clip(np.round(depth * 1000), 0, 65535).astype(np.uint16)
            depth_file.create_dataset(
                DEPTH_ROOT_KEY.format(frame),
                data=millimetres,
                compression='gzip',
                compression_opts=1,
            )
            if rgb_file is not None:
                _write_rgb_h5(rgb_file, frame, rgb, encode_h5)
            else:
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format='rgb24')):
                    video.mux(packet)
        if video is not None:
            for packet in stream.encode():
                video.mux(packet)
    finally:
        depth_file.close()
        if rgb_file is not None:
            rgb_file.close()
        if video is not None:
            video.close()
    return per_frame


def _ground_truth_json(scene, pixels, min_visible_pixels, seed) -> dict:
    frames = {}
    for frame in range(scene.num_frames):
        objects = []
        for index, (box, _) in enumerate(frame_boxes(scene, frame)):
            obj = scene.objects[index]
            visible, full = {}, {}
            for camera, camera_pixels in zip(scene.cameras, pixels, strict=True):
                seen = camera_pixels[frame][index]
                if seen.visible_box is not None and seen.visible_pixels >= min_visible_pixels:
                    visible[camera.name] = [int(v) for v in seen.visible_box]
                    full[camera.name] = [int(v) for v in seen.full_box]
            objects.append(
                {
                    'object type': obj.class_name,
                    'object id': obj.object_id,
                    # Unique across scenes: asset ids are shared by name over a dataset.
                    'object name': f'{obj.class_name.lower()}_{seed:05d}_{obj.object_id:03d}',
                    '3d location': [round(float(v), 4) for v in box.center],
                    '3d bounding box scale': [round(float(v), 4) for v in box.scale],
                    '3d bounding box rotation': [0.0, 0.0, round(float(box.yaw), 5)],
                    '2d bounding box visible': visible,
                    '2d bounding box': full,
                }
            )
        frames[str(frame)] = objects
    return frames


def write_synthetic_scene(
    out_dir: str | os.PathLike,
    seed: int,
    num_cameras: int = 6,
    num_objects: int = 10,
    num_frames: int = 300,
    fps: float = 30.0,
    width: int = 960,
    height: int = 540,
    rgb_format: str = 'h5',
    encode_h5_rgb: bool = True,
    min_visible_pixels: int = 10,
    workers: int | None = None,
    shapes: str = 'boxes',
) -> SceneModel:
    """Generate a scene from ``seed`` and write it in the raw layout to ``out_dir``.

    Args:
        rgb_format: ``'h5'`` (``<Camera>.h5`` with ``rgb/rgb_%05d.jpg``; JPEG bytes when
            ``encode_h5_rgb``, else decoded BGR pixels as the Isaac Sim converter writes)
            or ``'mp4'`` (``videos/<Camera>.mp4``, H.264 without B-frames).
        min_visible_pixels: fewer visible pixels than this and a camera's 2D box is left
            out of the ground truth.
        workers: processes rendering cameras in parallel (default: the CPU count).
        shapes: ``'boxes'`` (each object one box, an accent band on top) or ``'parts'``
            (each class built from parts: ``object_shapes``); the ground truth is the same.

    Returns:
        SceneModel: the generated world (cameras, racks, object tracks).
    """
    if rgb_format not in RGB_FORMATS:
        raise ValueError(f'rgb_format must be one of {RGB_FORMATS}, got {rgb_format!r}')
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f'{out}: not empty; choose a new folder for the scene')
    if rgb_format == 'mp4':
        import_pyav('--rgb-format mp4')  # before any file is written
    scene = make_scene_model(
        seed, num_cameras, num_objects, num_frames, fps, width, height, shapes=shapes
    )
    (out / 'depth_maps').mkdir(parents=True)
    if rgb_format == 'mp4':
        (out / 'videos').mkdir()
    jobs = [(out, scene, i, seed, rgb_format, encode_h5_rgb) for i in range(num_cameras)]
    workers = min(workers or os.cpu_count() or 1, num_cameras)
    # Each renderer runs one OpenCV thread. That is set here, before forking: a forked
    # child that resizes OpenCV's thread pool after the parent has used the pool (a
    # training pipeline, say) deadlocks. The caller's setting is restored afterwards.
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        if workers > 1:
            with get_context('fork').Pool(workers) as pool:
                pixels = pool.map(_render_camera, jobs)
        else:
            pixels = [_render_camera(job) for job in jobs]
    finally:
        cv2.setNumThreads(opencv_threads)
    (out / 'calibration.json').write_text(json.dumps(_calibration_json(scene), indent=1))
    ground_truth = _ground_truth_json(scene, pixels, min_visible_pixels, seed)
    (out / 'ground_truth.json').write_text(json.dumps(ground_truth))
    return scene
