"""Models: detectors, heads, layers, task modules and losses, all registered in MODELS."""

from . import data_preprocessors, detectors, heads, layers, losses, task_modules, utils

__all__ = ['data_preprocessors', 'detectors', 'heads', 'layers', 'losses', 'task_modules', 'utils']
