"""Open frame readers per worker process, keyed by file, so that h5 files and videos are
opened once rather than per sample (each data-loader worker builds its own cache)."""

import os

import cv2
import numpy as np

from ..aicity.frame_readers import FrameReadError, H5DepthReader, H5RgbReader, Mp4Reader


def is_video_frame_key(key) -> bool:
    """Whether a sample's ``img_key`` is a frame index into an mp4 (an h5 key is a string,
    an image file's None)."""
    return isinstance(key, (int, np.integer))


class FrameCache:
    """RGB and depth frames by (file, key); at most ``max_open`` files open at once."""

    def __init__(self, max_open: int = 64):
        self.max_open = max_open
        self._readers: dict[tuple[str, str], object] = {}
        self._pid = os.getpid()

    def _reader(self, kind: str, path: str):
        if os.getpid() != self._pid:  # forked into a worker: handles are not shareable
            self._readers, self._pid = {}, os.getpid()
        reader = self._readers.get((kind, path))
        if reader is None:
            if len(self._readers) >= self.max_open:
                self._readers.pop(next(iter(self._readers))).close()
            reader = {'mp4': Mp4Reader, 'rgb': H5RgbReader, 'depth': H5DepthReader}[kind](path)
            self._readers[(kind, path)] = reader
        return reader

    def rgb(self, path: str, key) -> np.ndarray:
        """RGB uint8 [H, W, 3] from (h5, key), (mp4, frame index) or an image file (key None)."""
        if key is None:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise FrameReadError(f'{path}: image not found or not decodable')
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if is_video_frame_key(key):
            return self._reader('mp4', path).read(int(key))
        return self._reader('rgb', path).read_key(key)

    def depth(self, path: str, key) -> np.ndarray:
        """Depth float32 metres [H, W] from (h5, key) or a uint16 millimetre PNG (key None)."""
        if key is None:
            depth = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if depth is None or depth.dtype != np.uint16:
                raise FrameReadError(f'{path}: not a uint16 depth PNG')
            return depth.astype(np.float32) / 1000.0
        return self._reader('depth', path).read_key(key)

    def __getstate__(self):
        return {'max_open': self.max_open, '_readers': {}, '_pid': None}
