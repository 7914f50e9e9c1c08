"""Deterministic top-k: ties go to the lower position, as in ONNX's TopK."""

import torch

from mmsparse4d.models.utils import stable_topk


def test_ties_are_broken_by_position():
    values = torch.tensor([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5]])
    top, index = stable_topk(values, 4, dim=1)
    assert index.tolist() == [[1, 3, 0, 2]]
    assert torch.equal(top, values[0, [1, 3, 0, 2]][None])
    # Many equal values (e.g. queries with identical features): still the first ones.
    _, index = stable_topk(torch.zeros(2, 300), 100, dim=1)
    assert index.tolist() == [list(range(100))] * 2


def test_equals_topk_without_ties():
    values = torch.randn(3, 50)
    top, index = stable_topk(values, 7, dim=-1)
    expected = values.topk(7, dim=-1)
    assert torch.equal(top, expected.values) and torch.equal(index, expected.indices)
