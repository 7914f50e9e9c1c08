"""Score one tracked scene against its ground truth: HOTA (3D IoU, as the AI City challenge
computes it) from the submission, centre-distance mAP from the tracked boxes with scores.

Inputs are what ``tools/infer.py`` writes (``<scene>_submission.txt`` and
``<scene>_tracks.npz``) and the scene's own ``ground_truth.json``. numpy and scipy only.
"""

from pathlib import Path

import numpy as np

from ..datasets.aicity import CLASSES, KNOWN_CLASSES, RawScene
from ..datasets.converters.camera_groups import cameras_origin
from .functional.aicity_hota import aicity_hota, every_class_hota
from .functional.box_errors import match_by_centre
from .functional.detection_ap import detection_ap
from .writers.aicity_submission import (
    BOX,
    CLASS,
    FRAME,
    OBJECT,
    ground_truth_rows,
    read_submission,
)

SCENE_ID = 0
# A ground-truth centre farther than this (metres, BEV) from every anchor counts as far.
FAR_FROM_ANCHORS = 1.0


def tracked_boxes(tracks_path: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """frame -> (boxes [M, 7] world metres and radians, scores [M], labels [M] indices into
    ``CLASSES``) from a ``*_tracks.npz``."""
    with np.load(tracks_path) as tracks:
        return {
            frame: (
                tracks[f'{frame}/bboxes_3d'][:, :7],
                tracks[f'{frame}/scores_3d'],
                tracks[f'{frame}/labels_3d'],
            )
            for frame in range(int(tracks['frames']))
        }


def where_missed(
    gt_rows: np.ndarray,
    pred_rows: np.ndarray,
    anchors_xy: np.ndarray,
    origin: np.ndarray,
    visible_cameras: np.ndarray,
    far: float = FAR_FROM_ANCHORS,
) -> dict:
    """Where the missed objects are: ground-truth rows [G, 11] that no prediction of their
    class pairs within 2 m (``match_by_centre``), by what may explain it.

    Args:
        anchors_xy: [A, 2] the model's anchor centres (its frame, metres).
        origin: [3] the scene's origin: a row's centre in the model's frame is world - origin.
        visible_cameras: [G] how many cameras have a visible 2D box of each row's object.

    Returns:
        dict: ``rows`` and ``missed``; ``confused``: missed rows with a prediction of another
        class within 2 m (the object is found, its class is wrong); ``far_rows`` (farther
        than ``far`` from every anchor) and ``far_missed``; ``by_cameras`` {'0', '1', '2',
        '3', '4', '5+': [rows, missed]}.
    """
    _, _, matched, _ = match_by_centre(gt_rows, pred_rows)
    any_class = gt_rows.copy(), pred_rows.copy()
    any_class[0][:, CLASS], any_class[1][:, CLASS] = 0, 0
    _, _, found, _ = match_by_centre(*any_class)
    missed = ~matched
    centres = gt_rows[:, BOX][:, :2] - np.asarray(origin)[:2]
    nearest = np.sqrt(((centres[:, None] - anchors_xy[None]) ** 2).sum(-1)).min(axis=1)
    far_rows = nearest > far
    bins = np.minimum(np.asarray(visible_cameras), 5)
    by_cameras = {
        ('5+' if count == 5 else str(count)): [
            int((bins == count).sum()),
            int((missed & (bins == count)).sum()),
        ]
        for count in range(6)
    }
    return {
        'rows': int(len(gt_rows)),
        'missed': int(missed.sum()),
        'confused': int((missed & found).sum()),
        'far_rows': int(far_rows.sum()),
        'far_missed': int((far_rows & missed).sum()),
        'by_cameras': by_cameras,
    }


def score_scene(
    scene_dir: str | Path,
    submission_path: str | Path,
    tracks_path: str | Path,
    anchors_xy: np.ndarray | None = None,
    origin: np.ndarray | None = None,
) -> dict:
    """HOTA, DetA, AssA (percent) and mAP of one tracked scene, and per class.

    The submission must use scene id ``SCENE_ID`` (``tools/infer.py``'s default). Frames
    the tracks do not cover are left out of both scores (``tools/infer.py --frames``).

    Returns:
        dict: ``HOTA``, ``DetA``, ``AssA``, ``mAP``, ``HOTA_every_class`` (a class with
        ground truth and no prediction scored 0, not skipped), ``frames``, ``gt_rows`` and
        ``per_class`` {class name: ``HOTA`` (0 where the class has ground truth and no
        prediction; the challenge's mean over classes skips such a class), ``AP``,
        ``gt_rows``} for every class of the ground truth; with the model's ``anchors_xy``
        [A, 2] also ``misses`` (``where_missed``), the scene taken in the frame centred on
        ``origin`` [3] (default: ``cameras_origin`` of its cameras, ``tools/infer.py``'s).
    """
    scene = RawScene(scene_dir)
    try:
        predictions = tracked_boxes(tracks_path)
        frames = sorted(predictions)
        gt = {}
        for frame in frames:
            objects = [o for o in scene.objects(frame) if o.class_name in CLASSES]
            gt[frame] = (
                np.array([[*o.location, *o.scale, o.yaw] for o in objects]).reshape(-1, 7),
                np.array([CLASSES.index(o.class_name) for o in objects], dtype=int),
            )
        gt_rows = ground_truth_rows(scene.ground_truth, SCENE_ID)
        if origin is None:
            origin = cameras_origin(list(scene.calibration.values()))
        cameras_seeing = {
            (frame, o.object_id): len(o.visible_boxes)
            for frame, objects in scene.ground_truth.items()
            for o in objects
        }
    finally:
        scene.close()
    gt_rows = gt_rows[np.isin(gt_rows[:, FRAME], frames)]
    pred_rows = read_submission(submission_path)
    hota = aicity_hota(gt_rows, pred_rows, num_frames=max(frames) + 1)
    ap = detection_ap(gt, predictions, CLASSES)
    scored = hota['per_scene_per_class'].get(SCENE_ID, {})
    per_class = {}
    for class_id in np.unique(gt_rows[:, CLASS]).astype(int):
        name = KNOWN_CLASSES[class_id]
        per_class[name] = {
            'HOTA': scored.get(class_id, {}).get('HOTA', 0.0),
            'AP': ap['per_class'][name]['AP'] if name in ap['per_class'] else 0.0,
            'gt_rows': int(np.sum(gt_rows[:, CLASS] == class_id)),
        }
    final = hota['final']
    extra = {}
    if anchors_xy is not None:
        visible = [cameras_seeing[int(row[FRAME]), int(row[OBJECT])] for row in gt_rows]
        extra['misses'] = where_missed(gt_rows, pred_rows, anchors_xy, origin, visible)
    return {
        'HOTA': final['HOTA'],
        'DetA': final['DetA'],
        'AssA': final['AssA'],
        'mAP': ap['mAP'],
        'HOTA_every_class': every_class_hota(hota, gt_rows),
        'frames': len(frames),
        'gt_rows': int(len(gt_rows)),
        'per_class': per_class,
        **extra,
    }
