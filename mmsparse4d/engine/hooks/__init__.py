"""Runner hooks."""

from .amp_scale_hook import AmpScaleHook
from .compile_regions_hook import CompileRegionsHook, compile_regions
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook

__all__ = ['AmpScaleHook', 'CompileRegionsHook', 'WeightsOnlyCheckpointHook', 'compile_regions']
