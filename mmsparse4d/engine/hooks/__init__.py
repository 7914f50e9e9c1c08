"""Runner hooks."""

from .amp_scale_hook import AmpScaleHook
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook

__all__ = ['AmpScaleHook', 'WeightsOnlyCheckpointHook']
