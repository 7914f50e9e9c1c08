"""Helpers for tests and tools: random but well-formed model inputs; capture hazards;
float tolerances from a rounding-error model."""

from .capture_safety import capture_hazards
from .random_inputs import build_untrained_model, random_batch, ring_cameras
from .tolerances import network_reductions, rounding_tolerance

__all__ = [
    'build_untrained_model',
    'capture_hazards',
    'network_reductions',
    'random_batch',
    'ring_cameras',
    'rounding_tolerance',
]
