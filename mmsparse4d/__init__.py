"""mmsparse4d: Sparse4D v3 multi-camera 3D detection and tracking for static cameras."""

from .version import __version__

__all__ = ['__version__']
