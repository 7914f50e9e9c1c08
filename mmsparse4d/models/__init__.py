"""Models: detectors, heads, layers, task modules and losses, all registered in MODELS."""

from . import detectors, heads, layers, losses, task_modules

__all__ = ['detectors', 'heads', 'layers', 'losses', 'task_modules']
