"""tools/aicity_eval.py run as a user runs it: bad input is one line on stderr, exit 2."""

import json
import subprocess
import sys

import pytest

from mmsparse4d.datasets.aicity import KNOWN_CLASSES
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # every test runs the tool in a subprocess

TOOL = REPO_ROOT / 'tools' / 'aicity_eval.py'
GOOD = '17 0 1 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30'


def run(*args):
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )


def write(path, *lines):
    path.write_text(''.join(line + '\n' for line in lines))
    return path


def one_line_refusal(done, expected: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [expected]
    assert 'Traceback' not in done.stderr and done.stdout == ''


def final_row(stdout: str) -> list[str]:
    """The cells of the score table's ``final`` row."""
    return next(line.split() for line in stdout.splitlines() if line.startswith('final'))


@pytest.fixture
def ground_truth(tmp_path):
    # Ground-truth ids start at 0 (as the synthetic scenes write them).
    return write(
        tmp_path / 'gt.txt',
        '17 0 0 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30',
        '17 0 0 1 1.10 1.00 0.90 0.50 0.60 1.80 0.30',
    )


@pytest.mark.parametrize(
    'lines, line, message',
    [
        (
            [GOOD, '', '17 0 1 3.5 1.00 1.00 0.90 0.50 0.60 1.80 0.30'],
            3,
            "frame_id '3.5' is not an integer",
        ),
        (
            [GOOD, '17 0 2 0 1.00 1.00 0.90 0.50 0.00 1.80 0.30'],
            2,
            'length 0: sizes must be > 0 metres',
        ),
        (
            [GOOD, '17 0 2 -1 1.00 1.00 0.90 0.50 0.60 1.80 0.30'],
            2,
            'frame_id -1: must be >= 0',
        ),
        (
            ['17 0 0 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30'],
            1,
            'object_id 0: predicted object ids must be >= 1 (the challenge requires positive ids)',
        ),
        (
            [GOOD, '17 0 1 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30 '],
            2,
            '12 fields, expected 11 separated by single spaces (a double or trailing space counts '
            'as an empty field)',
        ),
        (
            [GOOD, '', '', GOOD],
            4,
            'object_id 1 of class_id 0 appears twice in scene 17, frame 0 (also on line 1)',
        ),
        (
            ['18 0 1 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30'],
            1,
            'scene_id 18 is not in the ground truth (its scenes: 17); the official scorer refuses '
            'a submission with an undeclared scene',
        ),
    ],
)
def test_a_bad_line_is_one_stderr_line_naming_file_and_line(
    tmp_path, ground_truth, lines, line, message
):
    predictions = write(tmp_path / 'track1.txt', *lines)
    done = run('score', '--ground-truth', ground_truth, '--predictions', predictions)
    one_line_refusal(done, f'aicity_eval: {predictions}:{line}: {message}')


def test_debug_shows_the_traceback(tmp_path, ground_truth):
    predictions = write(tmp_path / 'track1.txt', '17 0 1 3.5 1.00 1.00 0.90 0.50 0.60 1.80 0.30')
    done = run('score', '--ground-truth', ground_truth, '--predictions', predictions, '--debug')
    assert done.returncode == 1
    assert 'Traceback' in done.stderr
    assert f"SubmissionError: {predictions}:1: frame_id '3.5' is not an integer" in done.stderr


def test_ground_truth_errors_name_their_line(tmp_path):
    ground_truth = write(tmp_path / 'gt.txt', '17 0 -1 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30')
    predictions = write(tmp_path / 'track1.txt', GOOD)
    done = run('errors', '--ground-truth', ground_truth, '--predictions', predictions)
    one_line_refusal(
        done, f'aicity_eval: {ground_truth}:1: object_id -1: ground-truth object ids must be >= 0'
    )


def test_empty_predictions_warn_and_score_0(tmp_path, ground_truth):
    predictions = write(tmp_path / 'track1.txt', '')
    summary = tmp_path / 'summary.json'
    done = run(
        'score', '--ground-truth', ground_truth, '--predictions', predictions, '--out', summary
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f'aicity_eval: warning: {predictions}: no rows: an empty prediction file scores 0 in '
        'every scene'
    ]
    assert final_row(done.stdout)[:2] == ['final', '0.000']
    assert json.loads(summary.read_text())['final']['HOTA'] == 0.0


def test_ground_truth_scores_100_against_itself_renumbered(tmp_path, ground_truth):
    # Ids are only compared for equality: ground truth 0 against prediction 1 is exact.
    predictions = write(
        tmp_path / 'track1.txt',
        *(line.replace('17 0 0 ', '17 0 1 ', 1) for line in ground_truth.read_text().splitlines()),
    )
    done = run('score', '--ground-truth', ground_truth, '--predictions', predictions)
    assert done.returncode == 0, done.stderr
    assert final_row(done.stdout)[:2] == ['final', '100.000']
    assert done.stdout.splitlines()[-1].endswith('where the protocol skips it): 100.000')


@pytest.mark.parametrize(
    'args, message',
    [
        (
            ['--parts', 'yaw+heading'],
            "--parts yaw+heading: unknown part 'heading'; parts are centre_xy, size, yaw, z, "
            'joined by + to combine',
        ),
        (['--parts', 'yaw', '--max-distance', '0'], '--max-distance must be > 0 metres, got 0'),
    ],
)
def test_argument_errors_are_one_line(tmp_path, ground_truth, args, message):
    predictions = write(tmp_path / 'track1.txt', GOOD)
    done = run('whatif', '--ground-truth', ground_truth, '--predictions', predictions, *args)
    one_line_refusal(done, f'aicity_eval: {message}')


def test_missing_file_and_unwritable_output(tmp_path, ground_truth):
    done = run('score', '--ground-truth', ground_truth, '--predictions', tmp_path / 'none.txt')
    one_line_refusal(done, f'aicity_eval: {tmp_path / "none.txt"}: no such file')
    predictions = write(tmp_path / 'track1.txt', GOOD)
    out = tmp_path / 'missing' / 'summary.json'
    done = run('score', '--ground-truth', ground_truth, '--predictions', predictions, '--out', out)
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert done.stderr.splitlines() == [
        f'aicity_eval: {out}: cannot write --out: No such file or directory'
    ]


def item(class_name, object_id, x):
    """One object of a ground_truth.json frame."""
    return {
        'object type': class_name,
        'object id': object_id,
        '3d location': [x, 1.0, 0.9],
        '3d bounding box scale': [0.5, 0.6, 1.8],
        '3d bounding box rotation': [0.0, 0.0, 0.3],
    }


def test_convert_gt_keeps_the_ids_of_the_json(tmp_path):
    source = tmp_path / 'ground_truth.json'
    frames = {
        '0': [item('Person', 0, 1.0), item('Forklift', 7, 5.0)],
        '1': [item('Person', 0, 1.1)],
    }
    source.write_text(json.dumps(frames))
    out = tmp_path / 'gt.txt'
    done = run('convert-gt', source, '--scene-id', 17, '--out', out)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == [
        '17 0 0 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30',
        '17 1 7 0 5.00 1.00 0.90 0.50 0.60 1.80 0.30',
        '17 0 0 1 1.10 1.00 0.90 0.50 0.60 1.80 0.30',
    ]


@pytest.mark.parametrize(
    'frames, message',
    [
        (
            {'0': [item('Person', 3, 1.0)], '1': [item('Forklift', 3, 5.0)]},
            'frame 1: object_id 3 is class_id 1 here but class_id 0 on frame 0 in scene 17: an '
            'object id has one class per scene',
        ),
        (
            {'0': [item('Person', 2, 1.0), item('Person', 2, 3.0)]},
            "frame 0, object 1: 'object id' 2 appears twice in this frame (also object 0)",
        ),
        (
            {'-1': [item('Person', 2, 1.0)]},
            "frame key '-1' is negative (frames count from 0)",
        ),
        (
            {'0': [{**item('Person', 2, 1.0), '3d bounding box scale': [-0.5, 0.6, 1.8]}]},
            "frame 0, object 0: key '3d bounding box scale' [-0.5, 0.6, 1.8]: sizes must be > 0 "
            'metres',
        ),
        (
            {'0': [{**item('Person', 2, 1.0), '3d bounding box rotation': [0.0, 0.0, 45.0]}]},
            "frame 0, object 0: key '3d bounding box rotation' [0.0, 0.0, 45.0]: angles must be "
            'radians (these look like degrees)',
        ),
        (
            {'0': [item('Person', -4, 1.0)]},
            'frame 0: object_id -4: ground-truth object ids must be >= 0',
        ),
    ],
)
def test_convert_gt_names_the_json_and_frame_of_a_bad_entry(tmp_path, frames, message):
    source = tmp_path / 'ground_truth.json'
    source.write_text(json.dumps(frames))
    out = tmp_path / 'gt.txt'
    done = run('convert-gt', source, '--scene-id', 17, '--out', out)
    one_line_refusal(done, f'aicity_eval: {source}: {message}')
    assert not out.exists()


def test_importing_the_tool_does_not_import_torch():
    # What makes the scorer start fast: a deterministic stand-in for its start time
    # (about 0.8 s here; 4.7 s when it imported mmdet3d and torch).
    code = (
        'import sys; sys.path.insert(0, "tools"); import aicity_eval; '
        'print(sorted(m for m in ("torch", "mmdet3d", "mmdet", "mmcv") if m in sys.modules))'
    )
    done = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]'


def test_a_class_left_out_scores_0_in_the_hota_over_every_class(tmp_path):
    truth = write(
        tmp_path / 'gt.txt',
        '17 0 0 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30',
        '17 1 5 0 6.00 1.00 0.90 1.20 2.60 2.00 0.30',
    )
    predictions = write(tmp_path / 'track1.txt', '17 0 1 0 1.00 1.00 0.90 0.50 0.60 1.80 0.30')
    summary = tmp_path / 'summary.json'
    done = run('score', '--ground-truth', truth, '--predictions', predictions, '--out', summary)
    assert done.returncode == 0, done.stderr
    assert final_row(done.stdout)[:2] == ['final', '100.000']  # the protocol skips class 1
    assert done.stdout.splitlines()[-1].endswith('where the protocol skips it): 50.000')
    # The class left out is named, not just missing from the table.
    assert (
        f'scene 17 / {KNOWN_CLASSES[1]}: 1 ground-truth boxes and no predictions; the protocol '
        "leaves the class out of the scene's mean"
    ) in done.stdout.splitlines()
    summary = json.loads(summary.read_text())
    assert summary['HOTA_every_class'] == pytest.approx(50.0)
    assert summary['classes_left_out'] == [{'scene': 17, 'class': KNOWN_CLASSES[1], 'gt_boxes': 1}]


def test_smooth_writes_a_smoothed_submission_and_refuses_bad_input(tmp_path):
    lines = [
        f'17 0 1 {f} {1 + 0.1 * f + (0.05 if f % 2 else -0.05):.2f} 1.00 0.90 0.50 0.60 '
        f'{1.8 + (0.1 if f == 3 else 0):.2f} 0.30'
        for f in range(8)
    ]
    lines += ['17 2 2 0 9.00 9.00 0.50 0.70 0.50 1.00 0.00']  # a one-row track
    predictions = write(tmp_path / 'track1.txt', *lines)
    out = tmp_path / 'smoothed.txt'
    done = run('smooth', '--predictions', predictions, '--out', out, '--centre-window', '3')
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f'{out}: 9 rows of 2 tracks smoothed')
    rows = [line.split() for line in out.read_text().splitlines()]
    assert [r[:4] for r in rows] == [line.split()[:4] for line in lines]
    # The zigzag about x = 1 + 0.1 f is averaged (exactly on the line in the middle).
    middle = [float(r[4]) for r in rows[3:5]]
    assert middle == pytest.approx([1.3, 1.4], abs=0.011)
    assert {r[9] for r in rows[:8]} == {'1.80'}  # the median height, frame 3's outlier gone
    assert rows[8][4:] == lines[8].split()[4:]  # kept as it is
    done = run(
        'smooth', '--predictions', write(tmp_path / 'bad.txt', lines[0], lines[0]), '--out', out
    )
    one_line_refusal(
        done,
        f'aicity_eval: {tmp_path / "bad.txt"}:2: object_id 1 of class_id 0 appears twice in scene '
        '17, frame 0 (also on line 1)',
    )
    done = run('smooth', '--predictions', predictions, '--out', out, '--size-window', 'x')
    assert done.returncode == 2 and "'x' is not all, none or frames >= 0" in done.stderr
    done = run('smooth', '--predictions', predictions, '--out', out, '--centre-window', '-1')
    one_line_refusal(done, 'aicity_eval: --centre-window must be >= 0 frames, got -1')
    done = run('smooth', '--predictions', predictions, '--out', out, '--yaw-window', '-2')
    one_line_refusal(done, 'aicity_eval: --yaw-window must be >= 0 frames, got -2')
    # On a floor at 0.1 m every centre sits half its (median) height above it.
    done = run('smooth', '--predictions', predictions, '--out', out, '--floor-height', '0.1')
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in out.read_text().splitlines()]
    assert {r[6] for r in rows[:8]} == {'1.00'} and rows[8][6] == '0.60'


def test_convert_gt_refuses_a_negative_scene_id(tmp_path):
    source = tmp_path / 'ground_truth.json'
    source.write_text(json.dumps({'0': [item('Person', 2, 1.0)]}))
    out = tmp_path / 'gt.txt'
    done = run('convert-gt', source, '--scene-id', -3, '--out', out)
    one_line_refusal(done, 'aicity_eval: --scene-id -3: must be >= 0')
    assert not out.exists()
