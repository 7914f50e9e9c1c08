"""Padding per-sample ground truth into batch tensors."""

import torch

from mmsparse4d.models.utils import pad_sequence


def test_samples_are_padded_in_place_and_empty_batches_keep_a_column():
    samples = [torch.randn(3, 11), torch.randn(0, 11), torch.randn(5, 11), torch.randn(1, 11)]
    padded = pad_sequence(samples, float('nan'), 'cpu')
    assert padded.shape == (4, 5, 11) and padded.dtype == torch.float32
    for b, sample in enumerate(samples):
        assert torch.equal(padded[b, : len(sample)], sample)
        assert padded[b, len(sample) :].isnan().all()
    labels = pad_sequence([torch.tensor([2, 0]), torch.tensor([1])], -1, 'cpu')
    assert labels.tolist() == [[2, 0], [1, -1]] and labels.dtype == torch.int64
    empty = pad_sequence([torch.zeros(0, dtype=torch.long)] * 3, -1, 'cpu')
    assert empty.tolist() == [[-1]] * 3  # one column: gathers still work


def test_padding_issues_a_fixed_number_of_ops_whatever_the_batch():
    # The training step pads the ground truth several times per decoder layer: a copy per
    # sample made its host overhead grow with the batch.
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.ops += 1
            return func(*args, **(kwargs or {}))

    counts = []
    for batch in (2, 32):
        samples = [torch.randn(b % 5, 11) for b in range(batch)]
        Count.ops = 0
        with Count():
            pad_sequence(samples, 0.0, 'cpu')
        counts.append(Count.ops)
    assert counts[0] == counts[1]


def test_samples_of_another_dtype_take_the_first_ones():
    padded = pad_sequence([torch.tensor([1, 2]), torch.tensor([3], dtype=torch.int32)], -1, 'cpu')
    assert padded.dtype == torch.int64 and padded.tolist() == [[1, 2], [3, -1]]
