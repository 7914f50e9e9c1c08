"""Building blocks of the head, one registered concept per file."""

from .asymmetric_ffn import AsymmetricFFN
from .decoupled_attention import DecoupledMultiheadAttention
from .deformable_feature_aggregation import DeformableFeatureAggregation, project_points
from .dense_depth_net import DenseDepthNet
from .grid_mask import GridMask
from .instance_bank import InstanceBank
from .key_points_generator import (
    CORNER_FIXED_POINTS,
    DEFAULT_FIXED_POINTS,
    FIXED_POINT_SETS,
    KeyPointsGenerator,
)
from .linear_relu_ln import linear_relu_ln
from .sparse_box3d_encoder import SparseBox3DEncoder
from .sparse_box3d_refinement_module import SparseBox3DRefinementModule

__all__ = [
    'AsymmetricFFN',
    'DecoupledMultiheadAttention',
    'DeformableFeatureAggregation',
    'DenseDepthNet',
    'GridMask',
    'InstanceBank',
    'CORNER_FIXED_POINTS',
    'DEFAULT_FIXED_POINTS',
    'FIXED_POINT_SETS',
    'KeyPointsGenerator',
    'SparseBox3DEncoder',
    'SparseBox3DRefinementModule',
    'linear_relu_ln',
    'project_points',
]
