"""Python side of the compiled operators: loading, autograd, references, modules."""

from .deformable_aggregation import (
    MSDA_FEATURE_GRADIENTS,
    default_msda_feature_gradient,
    deformable_aggregation,
    msda_feature_gradient,
    msda_feature_gradient_mode,
    set_msda_feature_gradient,
)
from .deformable_aggregation_inputs import (
    camera_level_shapes,
    clustered_locations,
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
    'MSDA_FEATURE_GRADIENTS',
    'ExtensionNotBuiltError',
    'MultiScaleDeformableAggregation',
    'camera_level_shapes',
    'clustered_locations',
    'default_msda_feature_gradient',
    'deformable_aggregation',
    'deformable_aggregation_reference',
    'load_extension',
    'msda_feature_gradient',
    'msda_feature_gradient_mode',
    'pack_spatial_shapes',
    'random_deformable_aggregation_inputs',
    'set_msda_feature_gradient',
]
