"""The AI City 2025 Track 1 submission text, and ground truth in the same format.

One line per detection, 11 fields separated by single spaces, floats with 2 decimals::

    <scene_id> <class_id> <object_id> <frame_id> <x> <y> <z> <width> <length> <height> <yaw>

The four ids are integers as written (``3.5`` or ``3.0`` in an id field is refused); x, y, z
are the box centroid in world metres, width, length and height its extents in metres
(> 0), yaw is in radians. Class ids: Person 0, Forklift 1, NovaCarter 2, Transporter 3,
FourierGR1T2 4, AgilityDigit 5,
PalletTruck 6 (added in 2026).

Object ids (``mmsparse4d/structures/track_ids.py``): a prediction's ids are >= 1, as the
challenge requires (our trackers number their tracks from ``FIRST_TRACK_ID`` = 1), unique
per scene and class, and one id is never used by two classes in a scene. Ground-truth ids
are >= 0, kept as ``ground_truth.json`` has them (the synthetic scenes number from 0).
Nothing here renumbers an id: what is written is what the rows hold, what is read is what
the file holds, and an error names the id as written, with the file and its 1-based line.

This module needs numpy only (no torch), so that ``tools/aicity_eval.py`` starts fast.
"""

import warnings
from pathlib import Path

import numpy as np

from ...datasets.aicity import KNOWN_CLASSES, GroundTruthObject
from ...utils.input_error import InputError

# The challenge's class ids: the six of 2025, then PalletTruck 6 (2026, NVIDIA's 7-class model).
CLASS_IDS = {name: index for index, name in enumerate(KNOWN_CLASSES)}
FIELDS = (
    'scene_id',
    'class_id',
    'object_id',
    'frame_id',
    'x',
    'y',
    'z',
    'width',
    'length',
    'height',
    'yaw',
)
NUM_FIELDS = len(FIELDS)
SCENE, CLASS, OBJECT, FRAME = 0, 1, 2, 3
IDS = slice(0, 4)  # scene, class, object, frame: integers
BOX = slice(4, 11)  # x, y, z, w, l, h, yaw
CENTRE = slice(4, 7)  # x, y, z: metres
SIZE = slice(7, 10)  # w, l, h: metres, > 0
Z, HEIGHT, YAW = 6, 9, 10  # metres, metres, radians
MIN_PREDICTION_ID = 1  # the challenge requires positive object ids
MIN_GROUND_TRUTH_ID = 0  # ground truth keeps its own ids; the synthetic scenes start at 0
SMALLEST_WRITTEN_SIZE = 0.005  # metres: anything smaller is written as 0.00


class SubmissionError(InputError):
    """A submission that breaks the format; the message names the file and line or id."""


class SubmissionWarning(UserWarning):
    """A submission that can be scored but is probably not what was meant (no rows)."""


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
    np.add.at(votes, (track_index.reshape(-1), class_index), scores)
    winner = classes[votes.argmax(1)][track_index.reshape(-1)]
    mixed = int(((votes > 0).sum(1) > 1).sum())
    rows[:, CLASS] = winner
    return rows, mixed


def _number(value: float) -> str:
    """A value as a file would have it: ``7`` for an integer, ``0.004``, ``nan``."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f'{value:g}'


def _earliest_same_key(keys: np.ndarray) -> np.ndarray:
    """[R] index of the first row whose key [R, K] equals each row's (itself if none is earlier)."""
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)]


def _row_problem(row: np.ndarray, ground_truth: bool) -> str:
    """What is wrong with one row [11] that ``check_rows`` flagged, the first problem only."""
    for column, value in enumerate(row):
        if not np.isfinite(value):
            return f'{FIELDS[column]} is {_number(value)}, not a finite number'
    for column in range(IDS.start, IDS.stop):
        if not float(row[column]).is_integer():
            return f'{FIELDS[column]} {_number(row[column])} is not an integer'
    if row[CLASS] not in CLASS_IDS.values():
        known = ', '.join(f'{index} {name}' for name, index in CLASS_IDS.items())
        return f'unknown class_id {_number(row[CLASS])}; the class ids are {known}'
    for column in (SCENE, FRAME):
        if row[column] < 0:
            # The scorer matches frames from 0: a negative one would be dropped unscored.
            return f'{FIELDS[column]} {_number(row[column])}: must be >= 0'
    if ground_truth and row[OBJECT] < MIN_GROUND_TRUTH_ID:
        return (
            f'object_id {_number(row[OBJECT])}: ground-truth object ids must be >= '
            f'{MIN_GROUND_TRUTH_ID}'
        )
    if not ground_truth and row[OBJECT] < MIN_PREDICTION_ID:
        return (
            f'object_id {_number(row[OBJECT])}: predicted object ids must be >= '
            f'{MIN_PREDICTION_ID} (the challenge requires positive ids)'
        )
    for column in range(SIZE.start, SIZE.stop):
        if row[column] <= 0:
            return f'{FIELDS[column]} {_number(row[column])}: sizes must be > 0 metres'
    raise AssertionError(f'check_rows flagged a row without a problem: {row}')


def check_rows(
    rows: np.ndarray,
    where: str = 'submission',
    ground_truth: bool = False,
    lines: np.ndarray | None = None,
    places: list[str] | None = None,
) -> np.ndarray:
    """Validate submission rows; the first offending row raises.

    Per row: finite values, integer ids, scene and frame ids >= 0, a known class id, an
    object id >= 1 (>= 0 for ground truth), width, length and height > 0 metres. Across
    rows: one class per (scene, object id), no (scene, class, object id, frame) twice.

    Args:
        rows: [R, 11] submission rows.
        where: the file the rows come from, or a name such as ``'predictions'``.
        ground_truth: the rows are ground truth, whose ids may start at 0.
        lines: [R] 1-based line numbers of the rows in ``where``; errors then read
            ``where:LINE: ...``, otherwise ``where: row INDEX: ...`` (0-based).
        places: instead of ``lines``, where each row [R] comes from in ``where`` (e.g.
            ``'frame 4'`` of a ``ground_truth.json``); errors read ``where: PLACE: ...``.

    Returns:
        np.ndarray: the rows [R, 11] as float64.

    Raises:
        SubmissionError: naming the line (or row), the field and the value as written.
    """
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, NUM_FIELDS)

    def place(index: int) -> str:
        if lines is not None:
            return f'line {int(lines[index])}'
        return places[index] if places is not None else f'row {index}'

    def fail(index: int, message: str):
        if lines is not None:
            raise SubmissionError(message, path=where, line=int(lines[index]))
        raise SubmissionError(f'{place(index)}: {message}', path=where)

    smallest_id = MIN_GROUND_TRUTH_ID if ground_truth else MIN_PREDICTION_ID
    # NaN fails every comparison below, so a non-finite row is flagged as well.
    bad = (
        ~np.isfinite(rows).all(1)
        | (rows[:, IDS] != np.round(rows[:, IDS])).any(1)
        | ~np.isin(rows[:, CLASS], list(CLASS_IDS.values()))
        | (rows[:, OBJECT] < smallest_id)
        | (rows[:, [SCENE, FRAME]] < 0).any(1)
        | (rows[:, SIZE] <= 0).any(1)
    )
    if bad.any():
        index = int(np.argmax(bad))
        fail(index, _row_problem(rows[index], ground_truth))
    if len(rows) == 0:
        return rows
    # One class per (scene, object id): the first row whose pair an earlier row has with
    # another class.
    earlier = _earliest_same_key(rows[:, [SCENE, OBJECT]])
    other_class = np.flatnonzero(rows[:, CLASS] != rows[earlier, CLASS])
    if len(other_class):
        index = int(other_class[0])
        scene, obj, cls = (_number(rows[index, k]) for k in (SCENE, OBJECT, CLASS))
        fail(
            index,
            f'object_id {obj} is class_id {cls} here but class_id '
            f'{_number(rows[earlier[index], CLASS])} on {place(int(earlier[index]))} in '
            f'scene {scene}: an object id has one class per scene',
        )
    earlier = _earliest_same_key(rows[:, [SCENE, CLASS, OBJECT, FRAME]])
    repeats = np.flatnonzero(earlier != np.arange(len(rows)))
    if len(repeats):
        index = int(repeats[0])
        scene, cls, obj, frame = (_number(v) for v in rows[index, IDS])
        fail(
            index,
            f'object_id {obj} of class_id {cls} appears twice in scene {scene}, frame {frame} '
            f'(also on {place(int(earlier[index]))})',
        )
    return rows


def write_submission(path: str | Path, rows: np.ndarray, ground_truth: bool = False) -> None:
    """Check the rows [R, 11], then write them; nothing is written when they are invalid.

    Ids are written as the rows hold them (never renumbered); floats with 2 decimals.

    Args:
        ground_truth: the rows are ground truth, whose object ids may start at 0.

    Raises:
        SubmissionError: a row that breaks the format, or a size (metres) that would be
            written as 0.00.
    """
    rows = check_rows(rows, str(path), ground_truth)
    small = rows[:, SIZE] < SMALLEST_WRITTEN_SIZE
    if small.any():
        index, column = (int(v[0]) for v in np.nonzero(small))
        raise SubmissionError(
            f'row {index}: {FIELDS[SIZE.start + column]} {rows[index, SIZE.start + column]:g} m '
            'would be written as 0.00, which no reader accepts; sizes must be >= '
            f'{SMALLEST_WRITTEN_SIZE} m',
            path=path,
        )
    lines = [
        ' '.join([f'{int(v)}' for v in row[IDS]] + [f'{v:.2f}' for v in row[BOX]]) for row in rows
    ]
    Path(path).write_text('\n'.join(lines) + ('\n' if lines else ''))


def _parse_line(text: str, path: Path, number: int) -> list[float]:
    """The 11 values of one line; ids must be integers as written."""
    fields = text.split(' ')  # single spaces, as the official scorer splits them
    if len(fields) != NUM_FIELDS:
        # A double or trailing space makes an empty field, as in the official scorer.
        hint = ' (a double or trailing space counts as an empty field)' if '' in fields else ''
        raise SubmissionError(
            f'{len(fields)} fields, expected {NUM_FIELDS} separated by single spaces{hint}',
            path=path,
            line=number,
        )
    values = []
    for column, field in enumerate(fields):
        try:
            values.append(int(field) if column < IDS.stop else float(field))
        except ValueError:
            kind = 'an integer' if column < IDS.stop else 'a number'
            raise SubmissionError(
                f'{FIELDS[column]} {field!r} is not {kind}', path=path, line=number
            ) from None
    return values


def read_submission(
    path: str | Path, ground_truth: bool = False, return_lines: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Rows [R, 11] of a submission or ground-truth text, checked as ``check_rows`` does.

    Blank lines are skipped; a file without rows warns (``SubmissionWarning``) and gives
    [0, 11] rows: empty predictions score 0.

    Args:
        path: the text file.
        ground_truth: the file is ground truth, whose object ids may start at 0.
        return_lines: also return the 1-based line number [R] of every row.

    Raises:
        SubmissionError: ``path:LINE: what is wrong`` for the first offending line.
    """
    path = Path(path)
    if not path.is_file():
        raise SubmissionError('no such file', path=path)
    rows, numbers = [], []
    try:
        with open(path, encoding='utf-8') as file:
            for number, line in enumerate(file, start=1):
                line = line.rstrip('\n')
                if line.strip():
                    rows.append(_parse_line(line, path, number))
                    numbers.append(number)
    except UnicodeDecodeError as error:
        raise SubmissionError(
            f'not UTF-8 text ({error.reason} at byte {error.start}); a zipped submission '
            'must be unpacked first',
            path=path,
        ) from None
    if not rows:
        meaning = (
            'an empty ground-truth file adds nothing to score'
            if ground_truth
            else 'an empty prediction file scores 0 in every scene'
        )
        warnings.warn(f'{path}: no rows: {meaning}', SubmissionWarning, stacklevel=2)
    numbers = np.array(numbers, dtype=np.int64)
    rows = check_rows(np.array(rows, dtype=np.float64), str(path), ground_truth, numbers)
    return (rows, numbers) if return_lines else rows


def ground_truth_rows(
    ground_truth: dict[int, list[GroundTruthObject]],
    scene_id: int,
    source: str | Path = 'ground truth',
) -> np.ndarray:
    """``ground_truth.json`` content (``load_ground_truth``) as submission rows [R, 11].

    Object ids are kept as the file has them (never renumbered), so a ground-truth row
    and the scene's JSON name an object alike. Every class ``load_ground_truth`` returns
    (the known classes, after the alias table) has a class id.

    Args:
        source: the file the content was read from, named by errors.

    Raises:
        SubmissionError: an object id below 0, an id with two classes or twice in a frame,
            a size <= 0, naming ``source``, the frame and the id as the file has it.
    """
    rows, places = [], []
    for frame, objects in ground_truth.items():
        for obj in objects:
            class_id = CLASS_IDS[obj.class_name]
            rows.append(
                [scene_id, class_id, obj.object_id, frame, *obj.location, *obj.scale, obj.yaw]
            )
            places.append(f'frame {frame}')
    rows = np.array(rows, dtype=np.float64).reshape(-1, NUM_FIELDS)
    return check_rows(rows, str(source), ground_truth=True, places=places)
