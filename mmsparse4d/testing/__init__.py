"""Helpers for tests and tools: random but well-formed model inputs."""

from .random_inputs import build_tiny, random_batch, ring_cameras

__all__ = ['build_tiny', 'random_batch', 'ring_cameras']
