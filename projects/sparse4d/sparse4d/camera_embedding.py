"""Camera embedding from the projection matrix, normalised so it does not depend on the image
resolution or the matrix's scale."""

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmsparse4d.models.layers import linear_relu_ln
from mmsparse4d.registry import MODELS

CAMERA_FEATURES = 14  # centre (3), viewing direction (3), normalised pixel rows (8)


def camera_geometry(projection_mat: Tensor, image_wh: Tensor) -> Tensor:
    """[B, N, 4, 4] world-to-pixel projections and [B, N, 2] image (W, H) -> [B, N, 14]:
    the camera centre (in tens of metres), the unit viewing direction, and the first two
    rows of the projection divided by the image size and by the depth row's norm.

    Upstream's camera embedding feeds the 12 raw numbers, which mix pixel-scaled and
    metre-scaled values of very different magnitudes and change with the resolution.
    All-zero matrices (cameras that only pad a batch) give finite zeros.
    """
    matrix = projection_mat[..., :3, :3].double()
    translation = projection_mat[..., :3, 3].double()
    # Closed-form 3x3 inverse (adjugate / determinant): no solver call, no host sync.
    rows = matrix.unbind(-2)
    adjugate_columns = (
        torch.linalg.cross(rows[1], rows[2]),
        torch.linalg.cross(rows[2], rows[0]),
        torch.linalg.cross(rows[0], rows[1]),
    )
    determinant = (rows[0] * adjugate_columns[0]).sum(-1)
    singular = determinant.abs() < 1e-12
    inverse = (
        torch.stack(adjugate_columns, dim=-1)
        / torch.where(singular, torch.ones_like(determinant), determinant)[..., None, None]
    )
    centre = -(inverse @ translation[..., None]).squeeze(-1)
    depth_norm = matrix[..., 2, :].norm(dim=-1, keepdim=True).clamp(min=1e-12)
    direction = matrix[..., 2, :] / depth_norm
    pixel_rows = projection_mat[..., :2, :].double() / image_wh.double()[..., None]
    pixel_rows = pixel_rows.flatten(-2) / depth_norm
    features = torch.cat([centre / 10.0, direction, pixel_rows], dim=-1)
    features = torch.where(singular[..., None], torch.zeros_like(features), features)
    return features.to(projection_mat.dtype)


@MODELS.register_module()
class ProjectionCameraEmbedding(BaseModule):
    """[B, N, 4, 4] projections + [B, N, 2] image sizes -> [B, N, C] embeddings (an MLP over
    ``camera_geometry``); used by DeformableFeatureAggregation's ``camera_encoder``."""

    def __init__(self, embed_dims=256, init_cfg=None):
        super().__init__(init_cfg)
        self.layers = linear_relu_ln(embed_dims, 1, 2, CAMERA_FEATURES)

    def forward(self, projection_mat: Tensor, image_wh: Tensor) -> Tensor:
        return self.layers(camera_geometry(projection_mat, image_wh))
