"""tools/analysis_tools/msda_sum_precision.py: the half backward's feature gradient summed
in fp32 or in bf16, emulated on the CPU against float64."""

import argparse

import torch

from tests.conftest import run_repo_tool
from tools.analysis_tools.msda_sum_precision import precision_rows, sum_in_bf16

# One bf16 rounding of each value: a relative error of at most 2^-9 per element.
ONE_ROUNDING = 2.0**-9


def test_bf16_sums_round_every_contribution_and_addition():
    pixel = torch.tensor([0, 0, 0, 1])
    value = torch.tensor([[256.0], [1.0], [1.0], [3.0]], dtype=torch.float64)
    total = sum_in_bf16(pixel, value, 2, torch.Generator().manual_seed(0))
    # 256 + 1 rounds back to 256 in bf16 (8 significant bits), whatever the order of the
    # two 1s: 256 + 1 + 1 = 258 only where both 1s come first.
    assert float(total[0, 0]) in (256.0, 258.0)
    assert float(total[1, 0]) == 3.0


def test_fp32_sums_carry_one_rounding_and_bf16_sums_lose_more_where_pixels_gather_more():
    args = argparse.Namespace(
        cams=2, size=(240, 136), anchors=120, points=13, channels=8, spread='uniform', seed=0
    )
    rows = precision_rows(args)
    assert [row['level'] for row in rows] == [0, 1, 2, 3]
    for row in rows:
        assert row['fp32'] <= ONE_ROUNDING  # an L2 norm of errors of at most 2^-9 each
        assert row['max'] >= 1
    coarse, fine = rows[-1], rows[0]
    assert coarse['mean'] > fine['mean']
    assert coarse['bf16'] > coarse['fp32'] and coarse['bf16'] > fine['bf16']


def test_the_tool_prints_its_table_and_refuses_bad_arguments():
    done = run_repo_tool('analysis_tools/msda_sum_precision.py', '--anchors', '60', '--cams', '1')
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count('\n| ') == 5  # the header and four levels
    done = run_repo_tool('analysis_tools/msda_sum_precision.py', '--channels', '12')
    assert done.returncode == 2
    assert 'msda_sum_precision: --channels must be a positive multiple of 8' in done.stderr
