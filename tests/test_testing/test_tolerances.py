"""rounding_tolerance holds for sums in any order and still sees a term gone missing."""

import numpy as np
import pytest
import torch
from torch import nn

from mmsparse4d.testing import network_reductions, rounding_tolerance


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=str)
def test_sums_in_any_order_agree_within_the_bound_and_a_missing_term_does_not(dtype):
    n = 4096
    x = torch.randn(n, dtype=dtype, generator=torch.Generator().manual_seed(0))
    values = x.numpy()
    exact = float(np.sum(values.astype(np.float64)))
    orders = {
        'torch (vectorised, blocked)': float(x.sum()),
        'sequential': float(np.cumsum(values, dtype=values.dtype)[-1]),
        'reversed': float(np.cumsum(values[::-1], dtype=values.dtype)[-1]),
        'pairwise (numpy)': float(np.sum(values)),
        'lanes of 16': float(np.sum(values.reshape(-1, 16), axis=0, dtype=values.dtype).sum()),
    }
    tolerance = rounding_tolerance(dtype, n, scale=float(x.abs().sum()))
    for name, value in orders.items():
        # Against the exact sum one side's error is allowed: the bound covers two.
        assert abs(value - exact) <= tolerance['atol'] / 2, name
    # A bug that drops one term of average size (of 4096) is outside it.
    index = int((x.abs() - x.abs().mean()).abs().argmin())
    dropped = float(torch.cat([x[:index], x[index + 1 :]]).sum())
    assert abs(dropped - exact) > 3 * tolerance['atol']


def test_errors_of_one_sign_need_the_worst_case_bound():
    # Adding 0.1 (not representable) a million times in order: every rounding has the same
    # sign, so the error grows like n, beyond the probabilistic bound but within gamma_n.
    n = 1_000_000
    sequential = float(np.cumsum(np.full(n, 0.1, dtype=np.float32), dtype=np.float32)[-1])
    exact = n * float(np.float32(0.1))
    scale = exact
    assert abs(sequential - exact) > rounding_tolerance(torch.float32, n, scale=scale)['atol']
    assert (
        abs(sequential - exact)
        <= rounding_tolerance(torch.float32, n, scale=scale, worst_case=True)['atol']
    )


def test_the_bound_grows_with_terms_depth_scale_and_shrinks_with_precision():
    base = rounding_tolerance(torch.float32, 100)
    assert base['atol'] == base['rtol'] == pytest.approx(2 * 8 * 10 * 2.0**-24)
    assert rounding_tolerance(torch.float32, 25, depth=4) == base
    assert rounding_tolerance(torch.float32, 100, scale=3.0)['atol'] == 3 * base['atol']
    assert rounding_tolerance(torch.float64, 100)['atol'] < 1e-8 * base['atol']
    assert rounding_tolerance(torch.bfloat16, 100)['atol'] > 1e4 * base['atol']
    with pytest.raises(ValueError, match='must be >= 1'):
        rounding_tolerance(torch.float32, 0)
    with pytest.raises(ValueError, match='bound nothing'):
        rounding_tolerance(torch.bfloat16, 1000, worst_case=True)


def test_network_reductions_reads_the_longest_and_counts_every_layer():
    net = nn.Sequential(
        nn.Conv2d(8, 16, 3),  # 8 * 9 = 72 terms
        nn.Conv2d(16, 16, 5, groups=4),  # 4 * 25 = 100 terms
        nn.GroupNorm(2, 16),
        nn.Flatten(),
        nn.Linear(64, 10),
        nn.LayerNorm(10),
        nn.ReLU(),
    )
    assert network_reductions(net) == (100, 5)
    attention = nn.MultiheadAttention(32, 4)  # with its out_proj Linear
    assert network_reductions(attention) == (32, 4)
    assert network_reductions(nn.ReLU()) == (1, 1)
