"""Data preprocessors."""

from .sparse4d_data_preprocessor import Sparse4DDataPreprocessor

__all__ = ['Sparse4DDataPreprocessor']
