"""tools/analysis_tools/benchmark_data.py: the training-order table feeds batches the way
the Runner's training loader does."""

import re
import time

import pytest
import torch

from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT
from tools.analysis_tools.benchmark_data import (
    batches_per_second,
    in_flight,
    loader_options,
    main,
)

TINY = REPO_ROOT / 'configs/sparse4d/sparse4d_tiny_synthetic.py'


def _table_rows(text: str, title: str) -> list[tuple[int, float]]:
    """(workers, samples/s) rows of the table printed after the line starting with title
    (the training-order table's loader and CPU columns left out)."""
    section = text[text.index(title) :].split('\n\n')[0]
    rows = re.findall(r'^\| (\d+) \|(?: [a-z ]+ \| [0-9.]+ \|)? ([0-9.]+) \|', section, re.M)
    return [(int(w), float(r)) for w, r in rows]


def _loaders(text: str) -> list[tuple[int, str]]:
    section = text[text.index('in training order') :].split('\n\n')[0]
    return [(int(w), name) for w, name in re.findall(r'^\| (\d+) \| ([a-z ]+) \|', section, re.M)]


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
        (['--ceiling', '0'], '--ceiling and --batches must be >= 1'),
    ],
)
def test_bad_arguments_are_refused_before_any_scene_is_made(arguments, message):
    with pytest.raises(InputError, match=message):
        main(['--config', str(TINY), *arguments])


def test_timed_draws_must_outnumber_what_the_workers_keep_in_flight():
    with pytest.raises(InputError, match=r'--samples and --batches must be >= 9 with 2 workers'):
        main(['--config', str(TINY), '--workers', '0', '2', '--samples', '8'])


class _SlowItems(torch.utils.data.Dataset):
    """Every item takes at least `seconds` to load."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __len__(self):
        return 1000

    def __getitem__(self, index):
        time.sleep(self.seconds)
        return index


def test_the_rate_is_not_inflated_by_batches_made_before_the_timed_window():
    # 2 workers of 50 ms items cannot make more than 40 items/s. Timing a few batches
    # after a short warm-up credited the workers' queue to the window (2 x 2 batches
    # already made): an estimate above the ceiling.
    workers, seconds = 2, 0.05
    loader = torch.utils.data.DataLoader(
        _SlowItems(seconds), batch_size=1, **loader_options(workers)
    )
    rate = batches_per_second(loader, 4 * in_flight(workers), workers)
    assert 0 < rate <= workers / seconds


def test_the_training_order_table_times_both_loaders(capsys):
    arguments = '--cameras 2 --size 96 54 --frames 8 --scenes 2 --workers 2 --samples 9'
    main(['--config', str(TINY), *arguments.split(), '--batch', '2', '--batches', '11'])
    printed = capsys.readouterr().out
    assert _loaders(printed) == [(2, 'in turn'), (2, 'slots')]
    rows = _table_rows(printed, 'in training order')  # with the training process's CPU
    assert len(rows) == 2 and all(rate > 0 for _, rate in rows)


def test_the_host_ceiling_times_independent_processes_and_shared_memory_can_be_chosen(capsys):
    arguments = '--cameras 2 --size 96 54 --frames 8 --scenes 2 --workers 0 --samples 2'
    main(
        ['--config', str(TINY), *arguments.split(), '--batch', '2', '--batches', '3']
        + ['--ceiling', '1', '2', '--small-tensors', 'shared-memory']
    )
    printed = capsys.readouterr().out
    assert 'small tensors sent shared-memory' in printed
    rows = _table_rows(printed, "the host's ceiling")
    assert [processes for processes, _ in rows] == [1, 2]
    assert all(rate > 0 for _, rate in rows)


def test_the_pipeline_can_leave_the_warp_and_colours_to_the_device_and_be_profiled(
    capsys, caplog_mm
):
    # The default pipeline (the 960x544 dataset base) has the colour distortion.
    arguments = '--cameras 2 --size 96 54 --frames 4 --workers 0 --samples 2 --profile 3'
    main([*arguments.split(), '--warp-images', 'device', '--colour-distortion', 'device'])
    printed = capsys.readouterr().out
    rows = _table_rows(printed, '2 cameras at 96x54')
    assert [workers for workers, _ in rows] == [0] and rows[0][1] > 0
    assert re.search(r'one process under cProfile: [0-9.]+ s per sample \(3 samples\)', printed)
    assert 'benchmark_data: images warped on the device' in caplog_mm
    assert 'benchmark_data: colours distorted on the device' in caplog_mm


def test_a_pipeline_without_the_colour_distortion_is_refused():
    with pytest.raises(InputError, match='has no MultiViewPhotometricDistortion'):
        main(['--config', str(TINY), '--colour-distortion', 'device'])


def test_the_slots_loader_needs_enough_timed_batches():
    with pytest.raises(InputError, match=r'--batches must be >= 11 for the slots loader'):
        main(
            [
                '--config',
                str(TINY),
                '--workers',
                '2',
                '--samples',
                '9',
                '--batch',
                '2',
                '--batches',
                '10',
            ]
        )


def test_the_training_order_table_draws_past_the_end_of_the_data(capsys):
    # 16 frames at batch 2 are 8 batches; the timing draws 2 + 12 from the cycling streams.
    arguments = '--cameras 2 --size 96 54 --frames 8 --scenes 2 --workers 1 --samples 5'
    main(['--config', str(TINY), *arguments.split(), '--batch', '2', '--batches', '12'])
    rows = _table_rows(capsys.readouterr().out, 'in training order')
    assert [workers for workers, _ in rows] == [1] and rows[0][1] > 0
