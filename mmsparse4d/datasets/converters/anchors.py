"""k-means anchor initialisation over ground-truth box centres."""

import numpy as np
from scipy.cluster.vq import kmeans2

from ...structures import ANCHOR_DIM, COS_YAW, H, L, W, X, Y, Z


def kmeans_anchors(boxes: np.ndarray, num_anchors: int = 900, seed: int = 0) -> np.ndarray:
    """Anchors [A, 11]: k-means centres of the boxes' centres, the log of the mean size,
    yaw 0 (sin 0, cos 1) and zero velocity, as upstream Sparse4D initialises them.

    Args:
        boxes: [M, 7] ground-truth boxes (x, y, z, w, l, h, yaw), M >= 1.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] < 6 or len(boxes) == 0:
        raise ValueError(f'kmeans_anchors needs boxes [M >= 1, 7], got shape {boxes.shape}')
    rng = np.random.default_rng(seed)
    centres = boxes[:, :3]
    if len(centres) < num_anchors:  # too few boxes for distinct clusters: jittered copies
        extra = centres[rng.integers(0, len(centres), num_anchors - len(centres))]
        centres = np.vstack([centres, extra + rng.normal(0, 0.5, extra.shape) * [1, 1, 0]])
    clusters, _ = kmeans2(centres, num_anchors, minit='++', seed=seed)
    anchors = np.zeros((num_anchors, ANCHOR_DIM), dtype=np.float32)
    anchors[:, [X, Y, Z]] = clusters
    anchors[:, [W, L, H]] = np.log(boxes[:, 3:6].mean(axis=0))
    anchors[:, COS_YAW] = 1.0
    return anchors
