"""A third-party visibility module, registered through custom_imports by a test config."""

import torch
from torch import nn

from mmsparse4d.registry import MODELS


@MODELS.register_module()
class UniformVisibility(nn.Module):
    """Every camera sees every instance equally well: visibility 0.5."""

    def forward(self, camera_features: torch.Tensor) -> torch.Tensor:
        return camera_features.new_full(camera_features.shape[:-1], 0.5)
