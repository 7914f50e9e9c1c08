"""Inference APIs."""

from .tracker import Sparse4DTracker

__all__ = ['Sparse4DTracker']
