"""Writing RGB frames in the Isaac Sim h5 layout that ``H5RgbReader`` reads."""

import cv2
import h5py
import numpy as np

from .frame_readers import RGB_KEY


def write_rgb_jpeg(file: h5py.File, frame: int, rgb: np.ndarray, quality: int = 92) -> None:
    """Store RGB uint8 [H, W, 3] as frame ``frame``'s JPEG bytes (a 1-D uint8 dataset at
    ``rgb/rgb_%05d.jpg``)."""
    ok, buffer = cv2.imencode('.jpg', rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f'{file.filename}: frame {frame} could not be encoded as JPEG')
    file.create_dataset(RGB_KEY.format(frame), data=np.frombuffer(buffer.tobytes(), np.uint8))


__all__ = ['write_rgb_jpeg']
