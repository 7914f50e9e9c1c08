"""Heads (Sparse4DHead)."""
