"""Helpers for tests and tools: random but well-formed model inputs; capture hazards."""

from .capture_safety import capture_hazards
from .random_inputs import build_tiny, random_batch, ring_cameras

__all__ = ['build_tiny', 'capture_hazards', 'random_batch', 'ring_cameras']
