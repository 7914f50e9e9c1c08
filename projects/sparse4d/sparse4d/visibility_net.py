"""Per-camera visibility of each instance (NVIDIA's occlusion-aware Sparse4D)."""

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmsparse4d.registry import MODELS


@MODELS.register_module()
class VisibilityNet(BaseModule):
    """Per-camera features [B, A, N, C] -> visibility in (0, 1) [B, A, N]: a 1x1 MLP
    (C -> hidden -> 1) shared by all cameras, as TAO's Conv1d pair over the camera axis."""

    def __init__(self, embed_dims=256, hidden_dims=32, init_cfg=None):
        super().__init__(init_cfg)
        self.layers = nn.Sequential(
            nn.Linear(embed_dims, hidden_dims), nn.ReLU(), nn.Linear(hidden_dims, 1)
        )

    def forward(self, camera_features: Tensor) -> Tensor:
        return self.layers(camera_features).squeeze(-1).sigmoid()
