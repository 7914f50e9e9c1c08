"""Helpers shared by the models."""

from .feature_maps import pack_feature_maps

__all__ = ['pack_feature_maps']
