"""tools/analysis_tools/benchmark_data.py: the training-order table feeds batches the way
the Runner's training loader does."""

import re

import pytest

from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT
from tools.analysis_tools.benchmark_data import main

TINY = REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'


def _table_rows(text: str, title: str) -> list[tuple[int, float]]:
    """(workers, samples/s) rows of the table printed after the line starting with title."""
    section = text[text.index(title) :].split('\n\n')[0]
    return [(int(w), float(r)) for w, r in re.findall(r'^\| (\d+) \| ([0-9.]+) \|', section, re.M)]


def test_training_order_table_times_the_sequence_sampler_batches(capsys):
    arguments = '--cameras 2 --size 96 54 --frames 8 --scenes 2 --workers 0 --samples 2'
    main(['--config', str(TINY), *arguments.split(), '--batch', '2', '--batches', '2'])
    printed = capsys.readouterr().out
    assert 'in training order: 2 scenes of 16 frames in all, batch 2' in printed
    assert "'split_num'" in printed  # the config's sampler options
    for title in ('2 cameras at 96x54', 'in training order'):
        rows = _table_rows(printed, title)
        assert [workers for workers, _ in rows] == [0]
        assert all(rate > 0 for _, rate in rows)


@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        (['--batch', '0'], '--batch and --batches must be >= 1'),
        (['--scenes', '0'], '--scenes must be >= 1'),
    ],
)
def test_bad_arguments_are_refused_before_any_scene_is_made(arguments, message):
    with pytest.raises(InputError, match=message):
        main(['--config', str(TINY), *arguments])
