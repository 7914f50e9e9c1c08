"""Host <-> device helpers: values, shapes and dtypes survive; one transfer for many."""

import numpy as np
import torch

from mmsparse4d.models.utils import to_device, to_host_at_once


def test_to_device_keeps_values_and_takes_a_dtype():
    moved = to_device(np.arange(3), 'cpu', torch.float32)
    assert moved.dtype == torch.float32 and moved.tolist() == [0.0, 1.0, 2.0]
    assert to_device([True, False], 'cpu', torch.bool).tolist() == [True, False]


def test_to_host_at_once_restores_shapes_and_dtypes_exactly():
    tensors = [
        torch.randn(2, 3),
        torch.tensor([2**40 + 1, -7]),  # int64 above float32's exact range
        torch.tensor([[True], [False]]),
        torch.zeros(0, 11),
        torch.tensor([float('nan'), 1.5], dtype=torch.float16),
    ]
    host = to_host_at_once(tensors)
    assert len(host) == len(tensors)
    for got, want in zip(host, tensors, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype and got.device.type == 'cpu'
        assert torch.equal(got.nan_to_num(-1), want.nan_to_num(-1))
    assert to_host_at_once([]) == []
