"""k-means anchor initialisation over ground-truth box centres."""

import logging
import warnings

import numpy as np
from mmengine.logging import print_log
from scipy.cluster.vq import kmeans2

from ...structures import ANCHOR_DIM, COS_YAW, H, L, W, X, Y, Z

ANCHOR_SIZES = ('mean', 'class')
# k-means++ over every box of a large training set costs minutes (one distance pass per
# anchor); a random subset of this many centres places the clusters as well.
MAX_KMEANS_BOXES = 50_000


def _class_shares(labels: np.ndarray, num_anchors: int) -> np.ndarray:
    """[A] a class label per anchor, each class's count proportional to its share of the
    boxes (largest remainders), every class with boxes getting at least one anchor."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * num_anchors
    per_class = np.maximum(np.floor(exact).astype(int), 1)
    while per_class.sum() > num_anchors:  # more classes than anchors can take one each
        per_class[np.argmax(per_class)] -= 1
    for index in np.argsort(-(exact - np.floor(exact)))[: num_anchors - per_class.sum()]:
        per_class[index] += 1
    return np.repeat(classes, per_class)


def kmeans_anchors(
    boxes: np.ndarray,
    num_anchors: int = 900,
    seed: int = 0,
    labels: np.ndarray | None = None,
    sizes: str = 'mean',
) -> np.ndarray:
    """Anchors [A, 11]: k-means centres of the boxes' centres, yaw 0 (sin 0, cos 1) and zero
    velocity, sized as ``sizes`` says.

    Args:
        boxes: [M, 7] ground-truth boxes (x, y, z, w, l, h, yaw) in metres, M >= 1.
        labels: [M] the boxes' class labels; needed for ``sizes='class'``.
        sizes: ``'mean'``: every anchor has the log of the mean size, as upstream Sparse4D
            initialises them. ``'class'``: each anchor takes one class's median size and
            centre height, the classes spread over the anchors in proportion to their boxes
            and at random over the floor, so that a forklift has forklift-sized anchors
            whose key points cover it in the first decoder layer (a mean size is a person's
            when most boxes are people).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] < 6 or len(boxes) == 0:
        raise ValueError(f'kmeans_anchors needs boxes [M >= 1, 7], got shape {boxes.shape}')
    if sizes not in ANCHOR_SIZES:
        raise ValueError(f'kmeans_anchors: sizes must be one of {ANCHOR_SIZES}, got {sizes!r}')
    if sizes == 'class' and (labels is None or len(labels) != len(boxes)):
        raise ValueError("kmeans_anchors: sizes='class' needs one label per box")
    rng = np.random.default_rng(seed)
    centres = boxes[:, :3]
    if len(centres) > MAX_KMEANS_BOXES:
        centres = centres[np.sort(rng.choice(len(centres), MAX_KMEANS_BOXES, replace=False))]
    if len(centres) < num_anchors:  # too few boxes for distinct clusters: jittered copies
        print_log(
            f'k-means anchors: {len(centres)} boxes for {num_anchors} anchors; the rest are '
            'copies of boxes moved by 0.5 m (more scenes or frames, or fewer --anchors, '
            'place them on real boxes)',
            logger='current',
            level=logging.WARNING,
        )
        extra = centres[rng.integers(0, len(centres), num_anchors - len(centres))]
        centres = np.vstack([centres, extra + rng.normal(0, 0.5, extra.shape) * [1, 1, 0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        clusters, _ = kmeans2(centres, num_anchors, minit='++', seed=seed)
    for message in sorted({str(warning.message) for warning in caught}):
        # scipy's own words (an empty cluster keeps its initial centre), said once.
        print_log(f'k-means anchors: {message}', logger='current', level=logging.WARNING)
    anchors = np.zeros((num_anchors, ANCHOR_DIM), dtype=np.float32)
    anchors[:, [X, Y, Z]] = clusters
    anchors[:, COS_YAW] = 1.0
    if sizes == 'mean':
        anchors[:, [W, L, H]] = np.log(boxes[:, 3:6].mean(axis=0))
        return anchors
    labels = np.asarray(labels)
    anchor_classes = rng.permutation(_class_shares(labels, num_anchors))
    for label in np.unique(anchor_classes):
        of_class = boxes[labels == label]
        chosen = anchor_classes == label
        anchors[chosen, Z] = np.median(of_class[:, 2])
        anchors[np.ix_(chosen, [W, L, H])] = np.log(np.median(of_class[:, 3:6], axis=0))
    return anchors
