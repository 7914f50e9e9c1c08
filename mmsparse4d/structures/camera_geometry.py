"""Camera maths shared by the data converter, the dataset and the tracker.

Conventions: ``world_to_camera`` [..., 4, 4] maps homogeneous world points (metres) to the
camera frame (x right, y down, z forward; metres); ``intrinsics`` [..., 3, 3] maps camera
points to homogeneous pixels (pixel centres at integers). A model works in a frame whose
origin is a world point ``origin`` [3] (a camera group's or a scene's centre), so that its
anchors cover the site: a point X of that frame is the world point X + origin.
"""

import numpy as np


def recentre_on_origin(world_to_camera: np.ndarray, origin) -> np.ndarray:
    """The cameras seen from the frame centred on ``origin``: X_cam = R (X + origin) + t.

    Args:
        world_to_camera: [..., 4, 4] world to camera (metres).
        origin: [3] world metres, the new frame's origin.

    Returns:
        np.ndarray: [..., 4, 4] float64, that frame to camera (a new array).
    """
    centred = np.array(world_to_camera, dtype=np.float64)
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    centred[..., :3, 3] += centred[..., :3, :3] @ origin
    return centred


def projection_matrix(intrinsics: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    """World to homogeneous pixels: the 4x4 lift of K times ``world_to_camera``.

    Args:
        intrinsics: [..., 3, 3] pinhole matrix K.
        world_to_camera: [..., 4, 4] (batch dimensions broadcast with ``intrinsics``).

    Returns:
        np.ndarray: [..., 4, 4] float64; rows 0-2 of P @ [X, 1] are (u z, v z, z).
    """
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    lift = np.broadcast_to(np.eye(4), (*intrinsics.shape[:-2], 4, 4)).copy()
    lift[..., :3, :3] = intrinsics
    return lift @ np.asarray(world_to_camera, dtype=np.float64)


def camera_centre(world_to_camera: np.ndarray) -> np.ndarray:
    """[..., 3] the cameras' centres in world metres (-R^T t) from [..., 4, 4]."""
    world_to_camera = np.asarray(world_to_camera, dtype=np.float64)
    rotation, translation = world_to_camera[..., :3, :3], world_to_camera[..., :3, 3]
    return -np.einsum('...ji,...j->...i', rotation, translation)
