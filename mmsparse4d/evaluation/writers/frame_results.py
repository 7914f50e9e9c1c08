"""Per-frame result JSON: every output of the model for one frame, world coordinates."""

import json
from pathlib import Path

import numpy as np

FIELDS = ('bboxes_3d', 'scores_3d', 'labels_3d', 'cls_scores', 'track_ids', 'instance_feats')


def write_frame_results(path: str | Path, token: str, results: dict) -> None:
    """``results`` in the decoder's schema: bboxes_3d [M, 10] (x, y, z, w, l, h, yaw, vx, vy,
    vz), scores_3d [M], labels_3d [M], and optionally cls_scores [M], track_ids [M] (from
    1), instance_feats [M, D]."""
    content = {'token': token}
    for key in FIELDS:
        if key in results and results[key] is not None:
            content[key] = np.asarray(results[key]).tolist()
    Path(path).write_text(json.dumps(content))


def read_frame_results(path: str | Path) -> dict:
    content = json.loads(Path(path).read_text())
    return {key: (np.asarray(v) if key != 'token' else v) for key, v in content.items()}
