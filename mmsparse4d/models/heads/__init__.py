"""Heads."""

from .operation_order import default_operation_order
from .sparse4d_head import Sparse4DHead

__all__ = ['Sparse4DHead', 'default_operation_order']
