"""Target assignment (Hungarian matching, denoising) and box decoders."""

from .sparse_box3d_decoder import SparseBox3DDecoder
from .sparse_box3d_target import DN_NEGATIVE, PADDING, SparseBox3DTarget

__all__ = ['DN_NEGATIVE', 'PADDING', 'SparseBox3DDecoder', 'SparseBox3DTarget']
