"""Frame-accurate readers of RGB (mp4 or h5) and depth (h5) by frame index.

* mp4: decoded with PyAV; frame index = 0-based decode order, found from each frame's
  presentation time, so random access seeks to the keyframe before it and decodes forward,
  and sequential reads continue the open decoder.
* RGB h5: datasets ``rgb/rgb_%05d.jpg`` holding decoded BGR pixels (cv2's order, as the
  Isaac Sim converter writes them) or the encoded JPEG bytes.
* depth h5: uint16 millimetres at the root (``distance_to_image_plane_%05d.png``, the AI City
  layout) or under ``distance_to_image_plane_png/`` (the Isaac Sim layout); decoded arrays
  or encoded PNG bytes. Returned as float32 metres, 0 where there is no return.

Every reader returns RGB uint8 [H, W, 3] or depth float32 [H, W] and raises
``FrameReadError`` naming the file and the key or frame.
"""

import os
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np

from ...utils.input_error import InputError
from ...utils.pyav import import_pyav

RGB_KEY = 'rgb/rgb_{:05d}.jpg'
DEPTH_ROOT_KEY = 'distance_to_image_plane_{:05d}.png'
DEPTH_GROUP_KEY = 'distance_to_image_plane_png/distance_to_image_plane_{:05d}.png'
# Markers of whole encoded images: a cut or foreign blob lacks one of them.
JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
PNG_START, PNG_END = b'\x89PNG\r\n\x1a\n', b'IEND'


class FrameReadError(InputError, LookupError):
    """A frame that cannot be read; the message names the file and the key or frame."""


class H5Reader:
    """Datasets of one h5 file by frame index; the file stays open while in use."""

    def __init__(self, path: str | Path, key_format: str):
        self.path = Path(path)
        if not self.path.is_file():
            raise FrameReadError(f'{self.path}: file not found')
        self.key_format = key_format
        self._file = None

    def _open(self) -> h5py.File:
        if self._file is None:
            try:
                self._file = h5py.File(self.path, 'r')
            except OSError as error:
                raise FrameReadError(f'{self.path}: not a readable h5 file ({error})') from None
        return self._file

    def _dataset(self, key: str):
        file = self._open()
        if key not in file:
            raise FrameReadError(f'{self.path}: no dataset {key!r}')
        return file[key][()], key

    def read(self, index: int) -> np.ndarray:
        """The frame ``index``, through ``key_format``."""
        return self.read_key(self.key_format.format(index))

    def _decoded(self, key: str, flags: int, what: str) -> np.ndarray:
        """The dataset's pixels; a 1-D uint8 dataset holds encoded image bytes."""
        data, key = self._dataset(key)
        if data.ndim == 1:
            data = cv2.imdecode(np.asarray(data, dtype=np.uint8), flags)
            if data is None:
                raise FrameReadError(f'{self.path}: dataset {key!r} is not a decodable {what}')
        return data

    def has(self, index: int) -> bool:
        return self.key_format.format(index) in self._open()

    def count_frames(self) -> int:
        """Frames 0..n-1 present as datasets; a gap (frame k missing while a later one is
        there) raises ``FrameReadError`` naming the missing key."""
        file = self._open()
        folder, _, name = self.key_format.rpartition('/')
        group = file[folder] if folder else file
        head, _, tail = name.partition('{')
        tail = tail.partition('}')[2]
        indices = set()
        for key in group:
            if (
                key.startswith(head)
                and key.endswith(tail)
                and key[len(head) : -len(tail)].isdigit()
            ):
                indices.add(int(key[len(head) : -len(tail)]))
        count = 0
        while count in indices:
            count += 1
        if indices and max(indices) >= count:
            raise FrameReadError(
                f'{self.path}: no dataset {self.key_format.format(count)!r} although the file '
                f'has frames up to {max(indices)}'
            )
        return count

    def check_frames(self, count: int, signature: bytes, trailer: bytes, what: str) -> None:
        """Check the datasets of frames 0..count-1 without decoding them: encoded bytes
        must start with ``signature`` and end with ``trailer`` (a cut or foreign blob does
        not), decoded arrays must have the reader's layout. Raises ``FrameReadError``
        naming the file and key."""
        file = self._open()
        for index in range(count):
            key = self.key_format.format(index)
            if key not in file:
                raise FrameReadError(f'{self.path}: no dataset {key!r}')
            dataset = file[key]
            if dataset.ndim == 1:
                if dataset.dtype != np.uint8 or dataset.shape[0] < len(signature) + len(trailer):
                    raise FrameReadError(f'{self.path}: dataset {key!r} is not a {what}')
                if bytes(dataset[: len(signature)]) != signature:
                    raise FrameReadError(
                        f'{self.path}: dataset {key!r} is not a {what} (it does not start '
                        f'with the {what} signature)'
                    )
                if trailer not in bytes(dataset[-len(trailer) - 16 :]):
                    raise FrameReadError(
                        f'{self.path}: dataset {key!r} is a cut {what} (no end marker)'
                    )
            else:
                self._check_array(dataset, key)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self):  # data-loader workers reopen the file
        return {**self.__dict__, '_file': None}


class H5RgbReader(H5Reader):
    def __init__(self, path: str | Path, key_format: str = RGB_KEY):
        super().__init__(path, key_format)

    def check(self, count: int) -> None:
        """Every frame 0..count-1 is a JPEG (start and end markers) or uint8 [H, W, 3]."""
        self.check_frames(count, JPEG_START, JPEG_END, 'JPEG image')

    def _check_array(self, dataset, key: str) -> None:
        if dataset.ndim != 3 or dataset.shape[2] != 3 or dataset.dtype != np.uint8:
            raise FrameReadError(
                f'{self.path}: dataset {key!r} is {dataset.dtype} '
                f'{dataset.shape}, not uint8 [H, W, 3]'
            )

    def read_key(self, key: str) -> np.ndarray:
        """RGB uint8 [H, W, 3] of dataset ``key``."""
        data = self._decoded(key, cv2.IMREAD_COLOR, 'image')
        if data.ndim != 3 or data.shape[2] != 3 or data.dtype != np.uint8:
            raise FrameReadError(
                f'{self.path}: dataset {key!r} is {data.dtype} {data.shape}, not uint8 [H, W, 3]'
            )
        # BGR (cv2) -> RGB; OpenCV's conversion is many times faster than copying a reversed view.
        return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


class H5DepthReader(H5Reader):
    def __init__(self, path: str | Path, key_format: str = DEPTH_ROOT_KEY):
        super().__init__(path, key_format)

    def check(self, count: int) -> None:
        """Every frame 0..count-1 is a PNG (signature and IEND chunk) or uint16 [H, W]."""
        self.check_frames(count, PNG_START, PNG_END, 'PNG image')

    def _check_array(self, dataset, key: str) -> None:
        if dataset.ndim != 2 or dataset.dtype != np.uint16:
            raise FrameReadError(
                f'{self.path}: dataset {key!r} is {dataset.dtype} '
                f'{dataset.shape}, not uint16 [H, W] mm'
            )

    def read_key(self, key: str) -> np.ndarray:
        """Depth along the optical axis, float32 metres [H, W]; 0 means no return."""
        data = self._decoded(key, cv2.IMREAD_UNCHANGED, 'PNG')
        if data.ndim != 2 or data.dtype != np.uint16:
            raise FrameReadError(
                f'{self.path}: dataset {key!r} is {data.dtype} {data.shape}, not uint16 [H, W] mm'
            )
        return data.astype(np.float32) / 1000.0


def open_depth_reader(path: str | Path) -> H5DepthReader:
    """A depth reader for either h5 layout, chosen by the keys present in the file."""
    path = Path(path)
    if not path.is_file():
        raise FrameReadError(f'{path}: depth file not found')
    with h5py.File(path, 'r') as file:
        if 'distance_to_image_plane_png' in file:
            return H5DepthReader(path, DEPTH_GROUP_KEY)
        if any(key.startswith('distance_to_image_plane_') for key in file):
            return H5DepthReader(path, DEPTH_ROOT_KEY)
    raise FrameReadError(f'{path}: holds no distance_to_image_plane datasets')


def _in_data_worker() -> bool:
    """Whether this process is a torch DataLoader worker (torch is not imported for it)."""
    torch = sys.modules.get('torch')
    return torch is not None and torch.utils.data.get_worker_info() is not None


# Decoders a forked process inherited open: never touched or freed there (see Mp4Reader).
_INHERITED_DECODERS: list = []


class Mp4Reader:
    """Frames of an mp4 by 0-based index, decoded with PyAV.

    Fork-safe: a process forked while a decoder is open (a data loader's worker) inherits
    it without its threads; using it, or freeing it, waits for them forever or crashes. The
    child leaves such a decoder alone (kept referenced, also when the reader is dropped) and
    opens the file again. A reader dropped in the process that opened it closes its decoder
    at once, so that no garbage decoder is left for a later fork to inherit."""

    def __init__(self, path: str | Path):
        # Set first: __del__ also runs for a reader whose __init__ raised.
        self._container = None
        self._frames = None  # decoder iterator
        self._next_index = None  # index of the frame the iterator yields next
        self.path = Path(path)
        if not self.path.is_file():
            raise FrameReadError(f'{self.path}: video not found')

    def _open(self):
        av = import_pyav(str(self.path))

        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as error:
            raise FrameReadError(f'{self.path}: cannot open video ({error})') from None
        self._opened_by = os.getpid()
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = 'AUTO'
        if _in_data_worker():
            # A data worker is one of many processes sharing the cores, each with a decoder
            # per camera: FFmpeg's default of a thread per core oversubscribes them, and
            # its frame threads decode a frame per thread ahead of the one asked for.
            self._stream.thread_count = 1
        rate = self._stream.average_rate or self._stream.guessed_rate
        if not rate:
            raise FrameReadError(f'{self.path}: the video stream has no frame rate')
        self._fps = float(rate)
        self._start = self._stream.start_time or 0

    @property
    def fps(self) -> float:
        """The video stream's frame rate (average, else guessed)."""
        if self._container is None:
            self._open()
        return self._fps

    def count_frames(self) -> int:
        """Frames in the file, counted by reading every packet (a cut file's header still
        promises the frames it lost), then the last one decoded. Raises
        ``FrameReadError`` for a file that cannot be opened, breaks off, or has fewer frames
        than its header lists."""
        av = import_pyav(str(self.path))

        self.close()  # count from the start of the file, with a decoder of its own
        self._open()
        count = 0
        try:
            for packet in self._container.demux(self._stream):
                if packet.size:
                    count += 1
        except av.error.FFmpegError as error:
            raise FrameReadError(
                f'{self.path}: the video breaks off after {count} frames ({error})'
            ) from None
        listed = int(self._stream.frames)
        self.close()
        if listed and count < listed:
            raise FrameReadError(
                f'{self.path}: cut short: its header lists {listed} frames, {count} are there'
            )
        if count == 0:
            raise FrameReadError(f'{self.path}: the video has no frames')
        try:
            self.read(count - 1)
        except FrameReadError:
            raise FrameReadError(
                f'{self.path}: its last frame ({count - 1}) cannot be decoded'
            ) from None
        return count

    def _index_of(self, frame) -> int:
        return int(round((frame.pts - self._start) * float(self._stream.time_base) * self._fps))

    def _seek(self, index: int) -> None:
        target = self._start + int(index / self._fps / float(self._stream.time_base))
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._next_index = None

    def read(self, index: int) -> np.ndarray:
        """RGB uint8 [H, W, 3] of frame ``index`` (0-based decode order)."""
        self._leave_inherited_decoder()
        if self._container is None:
            self._open()
        if index < 0:
            raise FrameReadError(f'{self.path}: frame {index} does not exist')
        if self._next_index is None or index < self._next_index or index > self._next_index + 30:
            self._seek(index)
        for frame in self._frames:
            current = self._index_of(frame)
            self._next_index = current + 1
            if current == index:
                return frame.to_ndarray(format='rgb24')
            if current > index:
                break
        raise FrameReadError(f'{self.path}: frame {index} does not exist')

    def _leave_inherited_decoder(self) -> None:
        """In a forked child, hand the parent's decoder to ``_INHERITED_DECODERS``."""
        if self._container is not None and self._opened_by != os.getpid():
            _INHERITED_DECODERS.append((self._container, self._frames))
            self._container = self._frames = self._next_index = None

    def close(self) -> None:
        self._leave_inherited_decoder()
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None
            self._next_index = None  # a new decoder starts with a seek

    def __del__(self):
        # Closed now, in the process that opened it: left to the garbage collector, the
        # decoder lives on in PyAV's own reference cycles, threads running, and a process
        # forked meanwhile inherits it. (In a child, close() leaves an inherited one alone.)
        self.close()

    def __getstate__(self):
        return {**self.__dict__, '_container': None, '_frames': None, '_next_index': None}
