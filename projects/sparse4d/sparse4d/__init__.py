"""The outside-in warehouse adaptation of Sparse4D (NVIDIA's "Sparse4D w/ OAE").

Loaded by its configs with ``custom_imports=dict(imports=['projects.sparse4d.sparse4d'])``
and registering only names the core does not have: a camera embedding from the projection
matrices, the visibility net, the occlusion-aware embedding, the BNNeck, the ID and
visibility losses, and the re-identification branch that the core head runs after its last
decoder layer (``Sparse4DHead(reid_branch=...)``).
"""

from .bnneck import BNNeck
from .camera_embedding import ProjectionCameraEmbedding, camera_geometry
from .occlusion_aware_embedding import OcclusionAwareEmbedding
from .occlusion_aware_reid_branch import OcclusionAwareReIDBranch
from .per_camera_features import sample_per_camera
from .reid_losses import LabelSmoothIDLoss, VisibilityLoss
from .visibility_net import VisibilityNet

__all__ = [
    'BNNeck',
    'LabelSmoothIDLoss',
    'OcclusionAwareEmbedding',
    'OcclusionAwareReIDBranch',
    'ProjectionCameraEmbedding',
    'VisibilityLoss',
    'VisibilityNet',
    'camera_geometry',
    'sample_per_camera',
]
