"""Inference APIs: the tracker (any back end) and what it checks of a frame."""

from .frame_input import check_frame
from .tracker import Sparse4DTracker, build_backend, load_model

__all__ = ['Sparse4DTracker', 'build_backend', 'check_frame', 'load_model']
