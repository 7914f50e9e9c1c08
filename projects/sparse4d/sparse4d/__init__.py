"""The outside-in warehouse adaptation of Sparse4D (NVIDIA's "Sparse4D w/ OAE").

Loaded by its configs with ``custom_imports=dict(imports=['projects.sparse4d.sparse4d'])``
and registering only names the core does not have. So far: the visibility net, the
occlusion-aware embedding, the BNNeck and the ID and visibility losses; the camera
embedding and the head wiring arrive with the rest of the [model] issue.
"""

from .bnneck import BNNeck
from .occlusion_aware_embedding import OcclusionAwareEmbedding
from .reid_losses import LabelSmoothIDLoss, VisibilityLoss
from .visibility_net import VisibilityNet

__all__ = [
    'BNNeck',
    'LabelSmoothIDLoss',
    'OcclusionAwareEmbedding',
    'VisibilityLoss',
    'VisibilityNet',
]
