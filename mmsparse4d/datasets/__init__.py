"""Datasets, raw-scene readers and converters."""

from . import samplers, transforms

__all__ = ['samplers', 'transforms']
