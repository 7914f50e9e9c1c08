"""Data samplers (sequence-aware group-in-batch sampling)."""

from .sequential_group_sampler import SequentialGroupSampler, build_sequences

__all__ = ['SequentialGroupSampler', 'build_sequences']
