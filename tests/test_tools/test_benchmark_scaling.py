"""tools/analysis_tools/benchmark_scaling.py: real torchrun launches of gloo processes on the
CPU, the table's arithmetic and the refusals."""

import os
import re
import subprocess
import sys

import pytest

from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT

TOOL = REPO_ROOT / 'tools/analysis_tools/benchmark_scaling.py'
TINY = REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'
SMALL_STEP = ['--batch', '1', '--cams', '2', '--size', '96', '64', '--boxes', '3']

sys.path.insert(0, str(TOOL.parent))
import benchmark_scaling  # noqa: E402


def run(*args):
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, cwd=REPO_ROOT
    )


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason='two processes need two cores')
def test_one_and_two_processes_train_alike_and_the_step_splits_into_its_parts():
    done = run(
        TINY, '--gpus', '1', '2', '--device', 'cpu', *SMALL_STEP, '--steps', '2', '--timeout', '600'
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split('|')[1:-1] for line in done.stdout.splitlines() if re.match(r'\| \d', line)]
    one, two = ([cell.strip() for cell in row] for row in rows)
    assert one[0] == '1' and two[0] == '2'
    assert one[4] == '100%' and one[8] == '-'
    # Each process trained on its own batches and DDP averaged the gradients: the same
    # parameters on both.
    assert two[8] == 'yes'
    step, base, side, averaging = float(two[1]), float(two[5]), float(two[6]), float(two[7])
    assert base == float(one[1])
    assert base + side + averaging == pytest.approx(step, abs=0.2)  # rounding of the cells
    assert float(two[2]) == pytest.approx(2 * float(two[3]), abs=0.2)  # samples/s in all


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--gpus', '0'], '--gpus: distinct counts >= 1, got 0'),
        (['--gpus', '1', '1'], '--gpus: distinct counts >= 1, got 1 1'),
        (['--gpus', '100000'], '--gpus 100000: this machine has '),
        (['--steps', '0'], '--steps and --batch must be >= 1, got 0 and 4'),
        (['--real-data'], '--real-data: this benchmark trains on random batches only'),
    ],
)
def test_bad_arguments_are_refused_before_any_launch(args, message):
    with pytest.raises(InputError) as refused:
        benchmark_scaling.main([str(TINY), '--device', 'cpu', *args])
    assert str(refused.value).startswith(message)


def test_a_missing_config_is_one_line_and_exit_2():
    done = run('no_such_config.py', '--device', 'cpu')
    assert done.returncode == 2
    assert done.stderr.strip() == 'benchmark_scaling: no_such_config.py: config not found'


def test_a_run_past_its_timeout_is_one_message_and_leaves_no_worker_behind():
    done = run(TINY, '--gpus', '1', '--device', 'cpu', *SMALL_STEP, '--timeout', '1')
    assert done.returncode == 1
    assert done.stderr.strip() == 'benchmark_scaling: 1 process did not finish in 1 s (--timeout)'
    workers = subprocess.run(['pgrep', '-f', f'{TOOL} .*--worker'], capture_output=True)
    assert workers.stdout == b''
