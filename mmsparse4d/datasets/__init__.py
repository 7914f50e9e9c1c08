"""Datasets, raw-scene readers and converters."""

from . import samplers, transforms
from .ovpkl_dataset import OVPKLDataset

__all__ = ['OVPKLDataset', 'samplers', 'transforms']
