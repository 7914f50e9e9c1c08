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

from pathlib import Path

import h5py
import numpy as np

from .calibration import CameraCalibration, load_calibration
from .frame_readers import (
    FrameReadError,
    H5RgbReader,
    Mp4Reader,
    open_depth_reader,
)
from .ground_truth import GroundTruthObject, load_ground_truth


class RawScene:
    """Calibration, ground truth, RGB and depth of one scene, by camera id and frame index.

    Args:
        root: the scene folder.
        cameras: a subset of the calibration's cameras to use (all by default); a camera
            that the calibration lacks is an error.
        require_depth: fail at construction when a camera has no depth file.
    """

    def __init__(self, root: str | Path, cameras=None, require_depth: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f'{self.root}: scene folder not found')
        self.name = self.root.name
        all_cameras = load_calibration(self.root / 'calibration.json')
        if cameras is None:
            cameras = list(all_cameras)
        missing = [camera for camera in cameras if camera not in all_cameras]
        if missing:
            calibration = self.root / 'calibration.json'
            raise KeyError(f'{calibration}: no camera {missing} (it has {list(all_cameras)})')
        self.calibration: dict[str, CameraCalibration] = {c: all_cameras[c] for c in cameras}
        gt_path = self.root / 'ground_truth.json'
        self.ground_truth: dict[int, list[GroundTruthObject]] | None = (
            load_ground_truth(gt_path, cameras=set(all_cameras)) if gt_path.is_file() else None
        )
        self._rgb = {camera: self._rgb_reader(camera) for camera in cameras}
        self._depth = {camera: self._depth_reader(camera, require_depth) for camera in cameras}

    @property
    def cameras(self) -> list[str]:
        return list(self.calibration)

    def _rgb_reader(self, camera: str):
        video = self.root / 'videos' / f'{camera}.mp4'
        if video.is_file():
            return Mp4Reader(video)
        h5 = self.root / f'{camera}.h5'
        if h5.is_file():
            with h5py.File(h5, 'r') as file:
                if 'rgb' in file:
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

    @property
    def num_frames(self) -> int:
        """Frames of the scene: the ground truth's frames, else the first camera's video."""
        if self.ground_truth:
            return max(self.ground_truth) + 1
        reader = self._rgb[self.cameras[0]]
        if isinstance(reader, Mp4Reader):
            return reader.num_frames
        with h5py.File(reader.path, 'r') as file:
            return len(file['rgb'])

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
        """The cameras' frame rate (they must agree; 30 when the calibration does not say)."""
        rates = {c.fps for c in self.calibration.values() if c.fps is not None}
        if len(rates) > 1:
            raise ValueError(f'{self.root}: cameras disagree on fps: {sorted(rates)}')
        return rates.pop() if rates else 30.0

    def objects(self, frame: int) -> list[GroundTruthObject]:
        if self.ground_truth is None:
            raise FileNotFoundError(f'{self.root}: no ground_truth.json')
        return self.ground_truth.get(frame, [])

    def _reader(self, readers: dict, camera: str):
        if camera not in readers:
            raise KeyError(f'{self.root}: no camera {camera!r} (it has {self.cameras})')
        return readers[camera]

    def close(self) -> None:
        for reader in [*self._rgb.values(), *self._depth.values()]:
            if reader is not None:
                reader.close()
