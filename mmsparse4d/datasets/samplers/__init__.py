"""Data samplers (sequence-aware group-in-batch sampling for training, whole scenes per
rank for evaluation)."""

from .sequence_test_sampler import SequenceTestSampler
from .sequential_group_sampler import SequentialGroupSampler, build_sequences

__all__ = ['SequenceTestSampler', 'SequentialGroupSampler', 'build_sequences']
