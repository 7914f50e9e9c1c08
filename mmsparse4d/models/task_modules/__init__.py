"""Target assignment (Hungarian matching, denoising) and box decoders."""

from .sparse_box3d_decoder import SparseBox3DDecoder

__all__ = ['SparseBox3DDecoder']
