"""Python side of the compiled operators: loading, autograd, references, modules."""

from .deformable_aggregation import (
    deformable_aggregation,
    msda_float32_gradient_accumulation,
    msda_gradient_accumulation,
    set_msda_float32_gradient_accumulation,
)
from .deformable_aggregation_inputs import (
    camera_level_shapes,
    pack_spatial_shapes,
    random_deformable_aggregation_inputs,
)
from .deformable_aggregation_reference import deformable_aggregation_reference
from .extension import (
    ExtensionNotBuiltError,
    load_extension,
)
from .multi_scale_deformable_aggregation import MultiScaleDeformableAggregation

__all__ = [
    'ExtensionNotBuiltError',
    'MultiScaleDeformableAggregation',
    'camera_level_shapes',
    'deformable_aggregation',
    'deformable_aggregation_reference',
    'load_extension',
    'msda_float32_gradient_accumulation',
    'msda_gradient_accumulation',
    'pack_spatial_shapes',
    'random_deformable_aggregation_inputs',
    'set_msda_float32_gradient_accumulation',
]
