"""Data workers send small tensors by value, large ones through shared memory."""

import functools
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from mmsparse4d.datasets.worker_transfer import (
    SMALL_TENSOR_BYTES,
    send_small_tensors_by_value,
    travels_by_value,
    with_small_tensors_by_value,
)


def _sample(index: int) -> dict:
    generator = torch.Generator().manual_seed(index)
    large = torch.randn(SMALL_TENSOR_BYTES // 4 + 1, generator=generator)  # one float over
    return {
        'projection': torch.randn(6, 4, 4, generator=generator),
        'half': torch.randn(3, 5, generator=generator).to(torch.bfloat16),
        'mask': torch.rand(7, generator=generator) > 0.5,
        'scalar': torch.tensor(float(index), dtype=torch.float64),
        'empty': torch.zeros(0, 3, dtype=torch.int64),
        'strided': torch.arange(24, dtype=torch.int32).reshape(4, 6)[:, ::2],
        'view_of_large': large[:10],
        'large': large,
    }


class _Samples(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return _sample(index)


def _received(by_value: bool) -> list[dict]:
    loader = DataLoader(_Samples(), batch_size=None, num_workers=2)
    if by_value:
        with_small_tensors_by_value(loader)
    return list(loader)


@pytest.mark.parametrize('by_value', [True, False])
def test_every_tensor_arrives_with_its_values_dtype_and_shape(by_value):
    for index, sample in enumerate(_received(by_value)):
        expected = _sample(index)
        assert sample.keys() == expected.keys()
        for key, value in sample.items():
            assert value.dtype == expected[key].dtype, key
            assert value.shape == expected[key].shape, key
            assert torch.equal(value, expected[key]), key


def test_small_tensors_travel_by_value_and_large_ones_through_shared_memory():
    by_value = _received(by_value=True)[0]
    shared = _received(by_value=False)[0]
    for key in ('projection', 'half', 'mask', 'scalar', 'strided', 'view_of_large'):
        assert not by_value[key].is_shared(), key
        assert shared[key].is_shared(), key
    assert by_value['large'].is_shared() and shared['large'].is_shared()
    # A small view of a large storage travels as its own elements, not the whole storage.
    assert by_value['view_of_large'].untyped_storage().nbytes() == 10 * 4


class _NestedSamples(_Samples):
    def __getitem__(self, index):
        return torch.nested.nested_tensor([torch.ones(2) * index, torch.ones(3)])


@pytest.mark.filterwarnings('ignore:The PyTorch API of nested tensors')
def test_a_nested_tensor_goes_through_shared_memory_and_arrives():
    assert not travels_by_value(torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]))
    # Sent by value, its reshape failed in the worker's feeder thread: the loader waited for
    # ever (the timeout makes a failure an error rather than a hang).
    loader = DataLoader(_NestedSamples(), batch_size=None, num_workers=2, timeout=60)
    with_small_tensors_by_value(loader)
    received = list(loader)
    assert [sample.unbind()[0].tolist() for sample in received] == [[i, i] for i in range(4)]


def test_only_plain_small_cpu_tensors_without_gradients_travel_by_value():
    assert travels_by_value(torch.zeros(SMALL_TENSOR_BYTES, dtype=torch.uint8))
    assert not travels_by_value(torch.zeros(SMALL_TENSOR_BYTES + 1, dtype=torch.uint8))
    assert not travels_by_value(torch.zeros(3, requires_grad=True))
    assert not travels_by_value(torch.nn.Parameter(torch.zeros(3)))
    assert not travels_by_value(torch.zeros(4, 4).to_sparse())
    assert travels_by_value(torch.zeros(4, 4), max_bytes=64) and not travels_by_value(
        torch.zeros(4, 5), max_bytes=64
    )


def test_the_loaders_own_worker_init_still_runs_and_is_chained_once(tmp_path):
    marks = tmp_path / 'marks'
    marks.mkdir()
    loader = DataLoader(
        _Samples(),
        batch_size=None,
        num_workers=2,
        worker_init_fn=functools.partial(_mark_worker, folder=str(marks)),
    )
    assert with_small_tensors_by_value(loader) is loader
    chained = loader.worker_init_fn
    assert with_small_tensors_by_value(loader).worker_init_fn is chained  # not twice
    sample = next(iter(loader))
    assert not sample['projection'].is_shared()
    assert sorted(path.name for path in marks.iterdir()) == ['0', '1']


def test_off_and_without_workers_the_loader_is_left_as_it_is():
    loader = DataLoader(_Samples(), batch_size=None, num_workers=2)
    assert with_small_tensors_by_value(loader, enabled=False).worker_init_fn is None
    in_process = DataLoader(_Samples(), batch_size=None, num_workers=0)
    assert with_small_tensors_by_value(in_process).worker_init_fn is None


def test_send_small_tensors_by_value_serves_as_a_worker_init_fn():
    loader = DataLoader(
        _Samples(), batch_size=None, num_workers=1, worker_init_fn=send_small_tensors_by_value
    )
    sample = next(iter(loader))
    assert not sample['projection'].is_shared() and sample['large'].is_shared()


def _mark_worker(worker_id: int, folder: str) -> None:
    (Path(folder) / str(worker_id)).touch()
