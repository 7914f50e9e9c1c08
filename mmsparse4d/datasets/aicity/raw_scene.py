"""A raw scene folder in the AI City 2025 or the Isaac Sim post-processed layout.

AI City 2025::

    <scene>/calibration.json  ground_truth.json (train/val)
            videos/<Camera>.mp4
            depth_maps/<Camera>.h5      uint16 mm at the root, distance_to_image_plane_%05d.png

Isaac Sim post-processed (h5)::

    <scene>/calibration.json  ground_truth.json
            <Camera>.h5                 rgb/rgb_%05d.jpg and distance_to_image_plane_png/...

Both may be mixed per camera: RGB comes from ``videos/<Camera>.mp4`` or ``<Camera>.h5``,
depth from ``depth_maps/<Camera>.h5`` or ``<Camera>.h5``.
"""

from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
from mmengine.logging import print_log

from ...utils.input_error import InputError
from .calibration import CalibrationError, CameraCalibration, load_calibration
from .frame_readers import (
    FrameReadError,
    H5RgbReader,
    Mp4Reader,
    open_depth_reader,
)
from .ground_truth import GroundTruthError, GroundTruthObject, load_ground_truth

# Frames, spread over a scene, whose objects check a calibration against the ground truth.
CALIBRATION_CHECK_FRAMES = 20


def _share_within_boxes(
    calibration: CameraCalibration, centres: np.ndarray, boxes: np.ndarray
) -> float:
    """The share of ``centres`` [M, 3] (world metres) that project in front of the camera
    and within their ``boxes`` [M, 4] (x1, y1, x2, y2 pixels) grown by the box's size on
    every side."""
    pixels, depth = calibration.project(centres)
    size = boxes[:, 2:] - boxes[:, :2]
    inside = ((pixels >= boxes[:, :2] - size) & (pixels <= boxes[:, 2:] + size)).all(1)
    return float(((depth > 1e-6) & inside).mean())


def _frame_size(reader) -> tuple[int, int]:
    """(width, height) in pixels of a reader's frame 0 (decoded once)."""
    height, width = reader.read(0).shape[:2]
    return width, height


class RawScene:
    """Calibration, ground truth, RGB and depth of one scene, by camera id and frame index.

    Args:
        root: the scene folder.
        cameras: a subset of the calibration's cameras to use (all by default); a camera
            that the calibration lacks is an error.
        require_depth: fail at construction when a camera has no depth file.
        ignore_classes: ground-truth classes whose objects are dropped, with a log line
            (see ``load_ground_truth``); any other class outside ``KNOWN_CLASSES`` is an
            error.
    """

    def __init__(
        self, root: str | Path, cameras=None, require_depth: bool = False, ignore_classes=()
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError('scene folder not found', self.root)
        # Resolved: a scene given as '.' or 'scene/' is named after its folder.
        self.name = self.root.resolve().name
        all_cameras = load_calibration(self.root / 'calibration.json')
        if cameras is None:
            cameras = list(all_cameras)
        missing = [camera for camera in cameras if camera not in all_cameras]
        if missing:
            calibration = self.root / 'calibration.json'
            raise InputError(f'no camera {missing} (it has {list(all_cameras)})', calibration)
        self.calibration: dict[str, CameraCalibration] = {c: all_cameras[c] for c in cameras}
        gt_path = self.root / 'ground_truth.json'
        self.ground_truth: dict[int, list[GroundTruthObject]] | None = (
            load_ground_truth(gt_path, set(all_cameras), ignore_classes)
            if gt_path.is_file()
            else None
        )
        self._rgb = {camera: self._rgb_reader(camera) for camera in cameras}
        self._depth = {camera: self._depth_reader(camera, require_depth) for camera in cameras}
        self._rgb_counts = None
        self._fps_logged = False

    @property
    def cameras(self) -> list[str]:
        return list(self.calibration)

    def _rgb_reader(self, camera: str):
        video = self.root / 'videos' / f'{camera}.mp4'
        h5 = self.root / f'{camera}.h5'
        h5_has_rgb = False
        if h5.is_file():
            with h5py.File(h5, 'r') as file:
                h5_has_rgb = 'rgb' in file
        if video.is_file() and h5_has_rgb:
            raise FrameReadError(
                f'{self.root}: camera {camera!r} has two RGB sources, videos/{camera}.mp4 and '
                f'the rgb/ group of {camera}.h5; remove one'
            )
        if video.is_file():
            return Mp4Reader(video)
        if h5_has_rgb:
            return H5RgbReader(h5)
        raise FrameReadError(
            f'{self.root}: camera {camera!r} has no RGB: neither videos/{camera}.mp4 nor '
            f'{camera}.h5 with an rgb/ group'
        )

    def _depth_reader(self, camera: str, required: bool):
        for path in (self.root / 'depth_maps' / f'{camera}.h5', self.root / f'{camera}.h5'):
            if path.is_file():
                try:
                    return open_depth_reader(path)
                except FrameReadError:
                    continue
        if required:
            raise FrameReadError(
                f'{self.root}: camera {camera!r} has no depth: neither depth_maps/{camera}.h5 '
                f'nor {camera}.h5 with distance_to_image_plane datasets'
            )
        return None

    def rgb_frame_counts(self) -> dict[str, int]:
        """RGB frames readable per camera: an mp4's packets counted and its last frame
        decoded, an h5's ``rgb/`` datasets 0..n-1 (a gap is an error)."""
        if self._rgb_counts is None:
            self._rgb_counts = {camera: self._rgb[camera].count_frames() for camera in self.cameras}
        return self._rgb_counts

    @property
    def num_frames(self) -> int:
        """Frames of the scene: those of its videos, which must all have the same number.

        Raises:
            FrameReadError: a camera has fewer frames than another (naming both), or a video
                cannot be read to its end.
        """
        counts = self.rgb_frame_counts()
        longest = max(counts, key=counts.get)
        for camera, count in counts.items():
            if count != counts[longest]:
                raise FrameReadError(
                    f'{self._rgb[camera].path}: {count} frames, while camera {longest!r} has '
                    f'{counts[longest]} ({self._rgb[longest].path}); every camera needs the '
                    'same frames'
                )
        if counts[longest] == 0:
            raise FrameReadError(f'no frames: {self._rgb[longest].path} holds none', self.root)
        return counts[longest]

    def check(self, frames: int | None = None, depth: bool = False) -> int:
        """Check, without decoding every image, that the first ``frames`` frames (all by
        default) can be read from every camera: video lengths (equal across cameras, and
        not shorter than the ground truth), each h5 image's markers, the frame size (the
        calibration's) and a video's frame rate (the calibration's, where it gives one);
        with ``depth``, depth for every camera or none, its frames, and its size (the
        images'). Call it before any output is written.

        Returns:
            int: the number of frames to use.

        Raises:
            FrameReadError, GroundTruthError: naming the file, camera, key or frame.
        """
        total = self.num_frames
        if frames is None:
            frames = total
        elif frames > total:
            raise FrameReadError(f'--frames {frames}: the videos have {total} frames', self.root)
        if self.ground_truth:
            last = max(self.ground_truth)
            if last >= total:
                shortest = self._rgb[self.cameras[0]].path
                raise GroundTruthError(
                    f'{self.root / "ground_truth.json"}: has frame {last}, the videos have '
                    f'{total} frames (e.g. {shortest}): the video is shorter than the ground '
                    'truth'
                )
        if self.ground_truth:
            self.check_calibration_fits_ground_truth()
        if depth:
            self._check_every_camera_has_depth()
        for camera in self.cameras:
            reader = self._rgb[camera]
            if isinstance(reader, H5RgbReader):
                reader.check(frames)
            size = self._check_media_against_calibration(camera)
            if depth:
                depth_reader = self._depth[camera]
                if depth_reader is None:  # no camera has depth
                    continue
                available = depth_reader.count_frames()
                if available < frames:
                    raise FrameReadError(
                        f'{depth_reader.path}: depth for {available} frames, the videos have '
                        f'{frames}: no dataset {depth_reader.key_format.format(available)!r}'
                    )
                depth_reader.check(frames)
                depth_size = _frame_size(depth_reader)
                if depth_size != size:
                    raise FrameReadError(
                        f'{depth_reader.path}: depth maps of {depth_size[0]}x{depth_size[1]}, '
                        f'camera {camera!r} images of {size[0]}x{size[1]}: the depth must '
                        "have the image's size"
                    )
        return frames

    def check_calibration_fits_ground_truth(
        self, frames: int = CALIBRATION_CHECK_FRAMES, least_share: float = 0.3
    ) -> None:
        """Per camera, the objects the ground truth gives a visible 2D box in it (over
        ``frames`` frames spread over the scene) must project, from their 3D centres, in
        front of the camera and within their 2D box grown by its size on every side; where
        fewer than ``least_share`` of at least 10 do, the calibration is refused, and the
        message says whether the inverse extrinsic fits (camera-to-world written for
        world-to-camera, the usual mix-up)."""
        keys = list(self.ground_truth)
        chosen = [
            keys[i] for i in np.linspace(0, len(keys) - 1, min(frames, len(keys))).astype(int)
        ]
        for camera, calibration in self.calibration.items():
            centres, boxes = [], []
            for frame in dict.fromkeys(chosen):
                for obj in self.ground_truth[frame]:
                    if camera in obj.visible_boxes:
                        centres.append(obj.location)
                        boxes.append(obj.visible_boxes[camera])
            if len(centres) < 10:
                continue
            centres, boxes = np.array(centres), np.array(boxes)
            share = _share_within_boxes(calibration, centres, boxes)
            if share >= least_share:
                continue
            inverted = replace(
                calibration, world_to_camera=np.linalg.inv(calibration.world_to_camera)
            )
            inverse = _share_within_boxes(inverted, centres, boxes)
            hint = (
                f'with its inverse {inverse:.0%} do: it looks like camera-to-world; write '
                'world-to-camera'
                if inverse >= least_share
                else "check the matrices and the ground truth's units"
            )
            raise CalibrationError(
                f'camera {camera!r}: of {len(centres)} objects the ground truth sees in it, '
                f'{share:.0%} project into their 2D boxes; {hint}',
                self.root / 'calibration.json',
            )

    def _check_every_camera_has_depth(self) -> None:
        without = [camera for camera in self.cameras if self._depth[camera] is None]
        if without and len(without) < len(self.cameras):
            raise FrameReadError(
                f'{self.root}: no depth for camera(s) {without} (neither depth_maps/<camera>.h5 '
                'nor <camera>.h5 with distance_to_image_plane datasets), while the others have '
                'it: give every camera depth, or none'
            )

    def _check_media_against_calibration(self, camera: str) -> tuple[int, int]:
        """The camera's frame size, (width, height), checked against its calibration, and a
        video's frame rate against the calibration's (1% apart at most)."""
        reader, calibration = self._rgb[camera], self.calibration[camera]
        size = _frame_size(reader)
        if calibration.size_guessed and size != (calibration.width, calibration.height):
            print_log(
                f"{self.root / 'calibration.json'}: camera {camera!r}: the images' size, "
                f'{size[0]}x{size[1]}, taken for the one guessed from the principal point',
                logger='current',
            )
            calibration = replace(calibration, width=size[0], height=size[1])
            self.calibration[camera] = calibration
        if size != (calibration.width, calibration.height):
            raise FrameReadError(
                f'{reader.path}: frames of {size[0]}x{size[1]}, while calibration.json gives '
                f'camera {camera!r} {calibration.width}x{calibration.height}: its intrinsics '
                'would not fit the images'
            )
        if isinstance(reader, Mp4Reader) and calibration.fps is not None:
            if abs(reader.fps - calibration.fps) > 0.01 * calibration.fps:
                raise FrameReadError(
                    f'{reader.path}: {reader.fps:g} frames per second, while calibration.json '
                    f'gives camera {camera!r} {calibration.fps:g}'
                )
        return size

    def rgb(self, camera: str, frame: int) -> np.ndarray:
        """RGB uint8 [H, W, 3]."""
        return self._reader(self._rgb, camera).read(frame)

    def depth(self, camera: str, frame: int) -> np.ndarray:
        """Depth along the optical axis, float32 metres [H, W]."""
        reader = self._reader(self._depth, camera)
        if reader is None:
            raise FrameReadError(f'{self.root}: camera {camera!r} has no depth file')
        return reader.read(frame)

    def rgb_source(self, camera: str, frame: int) -> tuple[Path, str | int]:
        """Where frame ``frame`` of ``camera`` lives: (h5 file, dataset key) or (mp4, index)."""
        reader = self._reader(self._rgb, camera)
        if isinstance(reader, Mp4Reader):
            return reader.path, frame
        return reader.path, reader.key_format.format(frame)

    def depth_source(self, camera: str, frame: int) -> tuple[Path, str] | None:
        """(h5 file, dataset key) of the depth of ``camera`` at ``frame``, or None."""
        reader = self._reader(self._depth, camera)
        return None if reader is None else (reader.path, reader.key_format.format(frame))

    @property
    def fps(self) -> float:
        """The cameras' frame rate: the calibration's (the cameras must agree), else the
        first video's, else 30 (both logged)."""
        rates = {c.fps for c in self.calibration.values() if c.fps is not None}
        if len(rates) > 1:
            raise CalibrationError(
                f'cameras disagree on "fps": {sorted(rates)}', self.root / 'calibration.json'
            )
        if rates:
            return rates.pop()
        videos = [reader for reader in self._rgb.values() if isinstance(reader, Mp4Reader)]
        fps, source = (videos[0].fps, str(videos[0].path)) if videos else (30.0, 'assumed')
        if not self._fps_logged:
            print_log(
                f'{self.root / "calibration.json"}: no "fps" attribute; {fps:g} frames per '
                f'second ({source})',
                logger='current',
            )
            self._fps_logged = True
        return fps

    def objects(self, frame: int) -> list[GroundTruthObject]:
        if self.ground_truth is None:
            raise InputError('no ground_truth.json', self.root)
        return self.ground_truth.get(frame, [])

    def _reader(self, readers: dict, camera: str):
        if camera not in readers:
            raise InputError(f'no camera {camera!r} (it has {self.cameras})', self.root)
        return readers[camera]

    def close(self) -> None:
        for reader in [*self._rgb.values(), *self._depth.values()]:
            if reader is not None:
                reader.close()
