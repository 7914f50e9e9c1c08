"""Detectors."""

from .sparse4d import Sparse4D

__all__ = ['Sparse4D']
