"""The AI City 2025 Track 1 submission text, and ground truth in the same format.

One line per detection, 11 fields separated by single spaces, floats with 2 decimals::

    <scene_id> <class_id> <object_id> <frame_id> <x> <y> <z> <width> <length> <height> <yaw>

class ids: Person 0, Forklift 1, NovaCarter 2, Transporter 3, FourierGR1T2 4, AgilityDigit 5;
object ids positive and unique per scene and class (one id is never used by two classes in
a scene).
"""

from pathlib import Path

import numpy as np

from ...datasets.aicity import CLASSES, GroundTruthObject
from ...utils.input_error import InputError

CLASS_IDS = {name: index for index, name in enumerate(CLASSES)}
NUM_FIELDS = 11
SCENE, CLASS, OBJECT, FRAME = 0, 1, 2, 3
BOX = slice(4, 11)  # x, y, z, w, l, h, yaw


class SubmissionError(InputError):
    """A submission that breaks the format; the message names the file and line or id."""


def one_class_per_track(
    rows: np.ndarray, scores: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Give every (scene, object id) the class with the largest summed score over its rows.

    A tracker keeps an id while the class it predicts for the object may flip between
    frames; the submission format allows one class per id and scene.

    Returns:
        tuple: the rows [R, 11] (a copy) and how many tracks changed class in some rows.
    """
    rows = np.array(rows, dtype=np.float64).reshape(-1, NUM_FIELDS)
    if len(rows) == 0:
        return rows, 0
    scores = np.ones(len(rows)) if scores is None else np.asarray(scores, dtype=np.float64)
    tracks, track_index = np.unique(rows[:, [SCENE, OBJECT]], axis=0, return_inverse=True)
    classes, class_index = np.unique(rows[:, CLASS], return_inverse=True)
    votes = np.zeros((len(tracks), len(classes)))
    np.add.at(votes, (track_index, class_index), scores)
    winner = classes[votes.argmax(1)][track_index]
    mixed = int(((votes > 0).sum(1) > 1).sum())
    rows[:, CLASS] = winner
    return rows, mixed


def check_rows(rows: np.ndarray, where: str = 'submission') -> np.ndarray:
    """Validate [R, 11] rows: class ids, positive unique object ids, finite boxes."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, NUM_FIELDS)
    if not np.isfinite(rows).all():
        raise SubmissionError(
            f'{where}: non-finite values in rows {np.flatnonzero(~np.isfinite(rows).all(1))[:5]}'
        )
    bad_class = ~np.isin(rows[:, CLASS], list(CLASS_IDS.values()))
    if bad_class.any():
        raise SubmissionError(
            f'{where}: unknown class id {rows[bad_class][0, CLASS]:g} '
            f'(row {np.flatnonzero(bad_class)[0]})'
        )
    if (rows[:, OBJECT] <= 0).any():
        raise SubmissionError(
            f'{where}: object ids must be positive (row {np.flatnonzero(rows[:, OBJECT] <= 0)[0]})'
        )
    pairs = np.unique(rows[:, [SCENE, OBJECT, CLASS]], axis=0)
    scene_object, counts = np.unique(pairs[:, :2], axis=0, return_counts=True)
    if (counts > 1).any():
        scene, obj = scene_object[counts > 1][0]
        raise SubmissionError(
            f'{where}: object id {obj:g} is used by several classes in scene {scene:g}'
        )
    keys, counts = np.unique(rows[:, [SCENE, CLASS, OBJECT, FRAME]], axis=0, return_counts=True)
    if (counts > 1).any():
        scene, cls, obj, frame = keys[counts > 1][0]
        raise SubmissionError(
            f'{where}: object {obj:g} of class {cls:g} appears twice in scene {scene:g}, '
            f'frame {frame:g}'
        )
    return rows


def write_submission(path: str | Path, rows: np.ndarray) -> None:
    """Check the rows, then write them (nothing is written when they are invalid)."""
    rows = check_rows(rows, str(path))
    lines = [
        ' '.join([f'{int(v)}' for v in row[:4]] + [f'{v:.2f}' for v in row[4:]]) for row in rows
    ]
    Path(path).write_text('\n'.join(lines) + ('\n' if lines else ''))


def read_submission(path: str | Path) -> np.ndarray:
    """Rows [R, 11] of a submission or ground-truth text; the format is checked per line."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f'{path}: file not found')
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(' ')  # single spaces, as the official scorer splits them
        if len(fields) != NUM_FIELDS:
            raise SubmissionError(
                f'{path}:{number}: {len(fields)} fields, expected {NUM_FIELDS} '
                'separated by single spaces'
            )
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            raise SubmissionError(f'{path}:{number}: a field is not a number: {line!r}') from None
    return check_rows(np.array(rows).reshape(-1, NUM_FIELDS), str(path))


def ground_truth_rows(
    ground_truth: dict[int, list[GroundTruthObject]], scene_id: int
) -> np.ndarray:
    """``ground_truth.json`` content (``load_ground_truth``) as submission rows.

    Object ids are made positive and unique per class by the official convention of the
    data (they already are); classes outside the six are left out.
    """
    rows = []
    for frame, objects in ground_truth.items():
        for obj in objects:
            if obj.class_name not in CLASS_IDS:
                continue
            rows.append([scene_id, CLASS_IDS[obj.class_name], obj.object_id + 1, frame,
                         *obj.location, *obj.scale, obj.yaw])  # fmt: skip
    return np.array(rows, dtype=np.float64).reshape(-1, NUM_FIELDS)
