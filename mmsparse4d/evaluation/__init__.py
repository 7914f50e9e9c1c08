"""Metrics (HOTA, center-distance AP) and result writers."""

from . import metrics

__all__ = ['metrics']
