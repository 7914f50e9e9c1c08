"""Heads."""

from .sparse4d_head import Sparse4DHead, default_operation_order

__all__ = ['Sparse4DHead', 'default_operation_order']
