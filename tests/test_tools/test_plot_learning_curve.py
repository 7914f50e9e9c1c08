"""tools/analysis_tools/plot_learning_curve.py: the curve a scalars.json gives, with and
without some loss terms, and its refusals."""

import json

from tests.conftest import run_repo_tool
from tools.analysis_tools.plot_learning_curve import loss_curve

ROWS = [
    {'lr': 1e-3, 'step': 0},
    {'loss': 10.0, 'loss_id': 2.0, 'loss_visibility': 0.5, 'step': 50},
    {'loss': 8.0, 'loss_id': 1.5, 'loss_visibility': 0.25, 'step': 100},
    # resumed from the checkpoint at 50: the later row of a step wins
    {'loss': 9.0, 'loss_id': 1.0, 'loss_visibility': 0.5, 'step': 50},
]


def test_the_later_row_of_a_step_wins_and_terms_are_left_out():
    assert loss_curve(ROWS) == ([50, 100], [9.0, 8.0])
    assert loss_curve(ROWS, ['loss_id', 'loss_visibility']) == ([50, 100], [7.5, 6.25])
    # a run that does not log a term keeps its total
    assert loss_curve([{'loss': 3.0, 'step': 1}], ['loss_id']) == ([1], [3.0])


def write_runs(root, names):
    """A scalars.json of ROWS in root/NAME/ for each name."""
    runs = []
    for name in names:
        (root / name).mkdir()
        path = root / name / 'scalars.json'
        path.write_text('\n'.join(json.dumps(row) for row in ROWS) + '\n')
        runs.append(path)
    return runs


def test_two_runs_plot_and_a_file_without_loss_is_refused(tmp_path):
    runs = write_runs(tmp_path, ('core', 'outside_in'))
    out = tmp_path / 'curve.png'
    done = run_repo_tool(
        'analysis_tools/plot_learning_curve.py', *runs, out, '--without', 'loss_id'
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    empty = tmp_path / 'empty.json'
    empty.write_text(json.dumps({'lr': 1.0, 'step': 0}) + '\n')
    done = run_repo_tool('analysis_tools/plot_learning_curve.py', empty, tmp_path / 'no.png')
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"plot_learning_curve: {empty}: no training loss (no line with 'loss' and 'step')"
    )
    assert not (tmp_path / 'no.png').exists()


def test_runs_at_two_batch_sizes_plot_against_the_samples_seen(tmp_path):
    runs = write_runs(tmp_path, ('batch16', 'batch64'))
    out = tmp_path / 'curve.png'
    tool = 'analysis_tools/plot_learning_curve.py'
    done = run_repo_tool(tool, *runs, out, '--samples-per-step', '16', '64')
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    done = run_repo_tool(tool, *runs, tmp_path / 'no.png', '--samples-per-step', '16')
    assert done.returncode == 2
    assert done.stderr.strip() == (
        'plot_learning_curve: --samples-per-step: 1 batch sizes for 2 files (one per file)'
    )
    assert not (tmp_path / 'no.png').exists()
