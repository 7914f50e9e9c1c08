"""Camera-view and bird's-eye-view drawing."""

# mmengine's Visualizer and vis backends (Local, TensorBoard), which the default runtime
# builds through our VISUALIZERS and VISBACKENDS, register when this module imports.
import mmengine.visualization  # noqa: F401

from .tracks import compose, draw_bev, draw_camera, track_colour  # noqa: E402

__all__ = ['compose', 'draw_bev', 'draw_camera', 'track_colour']
