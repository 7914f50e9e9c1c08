"""Losses."""

from .focal_loss import FocalLoss
from .sparse_box3d_loss import SparseBox3DLoss, gaussian_focal_loss

__all__ = ['FocalLoss', 'SparseBox3DLoss', 'gaussian_focal_loss']
