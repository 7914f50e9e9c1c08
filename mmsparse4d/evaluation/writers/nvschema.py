"""NVSchema JSON lines (DeepStream / NVIDIA's Sparse4D deploy output), one line per frame."""

import json
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

BASE_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)


def nvschema_frame(
    frame: int,
    sensor_id: str,
    boxes: np.ndarray,
    scores: np.ndarray,
    class_names: list[str],
    track_ids: np.ndarray,
    fps: float = 30.0,
    embeddings: np.ndarray | None = None,
) -> dict:
    """One frame: boxes [M, 7] (x, y, z, w, l, h, yaw, world metres), scores [M], class
    names [M], track ids [M], optional embeddings [M, D]."""
    stamp = BASE_TIME + timedelta(seconds=frame / fps)
    objects = []
    for index, box in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 7)):
        x, y, z, width, length, height, yaw = (round(float(v), 9) for v in box)
        vector = (
            []
            if embeddings is None
            else [{'vector': [round(float(v), 9) for v in embeddings[index]]}]
        )
        objects.append(
            {
                'id': str(int(track_ids[index])),
                'type': class_names[index],
                'confidence': round(float(scores[index]), 9),
                'coordinate': {'x': x, 'y': y, 'z': z},
                'bbox3d': {
                    'coordinates': [x, y, z, width, length, height, 0.0, 0.0, yaw],
                    'embedding': vector or [{}],
                    'confidence': round(float(scores[index]), 9),
                },
            }
        )
    return {
        'version': '4.0',
        'id': str(frame),
        'sensorId': sensor_id,
        'timestamp': stamp.strftime('%Y-%m-%dT%H:%M:%S.') + f'{stamp.microsecond // 1000:03d}Z',
        'objects': objects,
    }


def write_nvschema(path: str | Path, frames: Iterable[dict]) -> None:
    with open(path, 'w') as file:
        for frame in frames:
            file.write(json.dumps(frame) + '\n')


def read_nvschema(path: str | Path) -> list[dict]:
    frames = []
    with open(path) as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                try:
                    frames.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f'{path}:{number}: not JSON ({error})') from None
    return frames
