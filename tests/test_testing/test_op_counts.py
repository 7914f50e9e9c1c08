"""Counting the operations a block runs, views and allocations aside."""

from collections import Counter

import torch

from mmsparse4d.testing.op_counts import computing_operations, operation_table


def test_counts_computing_operations_forward_and_backward_not_views():
    x = torch.randn(4, 3, requires_grad=True)
    with computing_operations() as counts:
        y = (x.view(3, 4).t() * 2).sum()  # view and t: no kernel
        torch.empty(8)
    assert counts == {'mul.Tensor': 1, 'sum.default': 1}
    with computing_operations() as counts:
        y.backward()
    assert sum(counts.values()) > 0 and 'view.default' not in counts
    table = operation_table(Counter({'mul.Tensor': 4, 'add.Tensor': 2}), steps=2).splitlines()
    assert table[0].startswith('3 computing operations per step')
    assert table[1].split() == ['2.0', 'mul.Tensor']
