"""Datasets, raw-scene readers and converters."""

from . import samplers, transforms
from .multiview_collate import multiview_collate
from .ovpkl_dataset import OVPKLDataset

__all__ = ['OVPKLDataset', 'multiview_collate', 'samplers', 'transforms']
