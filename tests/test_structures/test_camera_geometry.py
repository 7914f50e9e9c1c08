import numpy as np
import pytest

from mmsparse4d.structures import camera_centre, projection_matrix, recentre_on_origin


def random_camera(rng):
    """A random rotation (QR of a Gaussian matrix, det +1), translation and pinhole K."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    if np.linalg.det(rotation) < 0:
        rotation[:, 0] *= -1
    world_to_camera = np.eye(4)
    world_to_camera[:3, :3] = rotation
    world_to_camera[:3, 3] = rng.uniform(-5, 5, 3)
    intrinsics = np.array([[800.0, 0, 480], [0, 790.0, 270], [0, 0, 1]])
    return intrinsics, world_to_camera


def test_a_point_of_the_centred_frame_projects_as_its_world_point():
    rng = np.random.default_rng(0)
    intrinsics, world_to_camera = random_camera(rng)
    origin = np.array([12.5, -40.0, 0.3])
    point = rng.uniform(-3, 3, 3)  # in the frame centred on origin
    centred = projection_matrix(intrinsics, recentre_on_origin(world_to_camera, origin))
    world = projection_matrix(intrinsics, world_to_camera)
    # float64 products of numbers below 1e3: a few ulps of the largest term.
    np.testing.assert_allclose(
        centred @ np.append(point, 1), world @ np.append(point + origin, 1), rtol=1e-12, atol=1e-9
    )


def test_recentring_moves_the_camera_centre_by_minus_the_origin_and_copies():
    rng = np.random.default_rng(1)
    _, world_to_camera = random_camera(rng)
    before = world_to_camera.copy()
    origin = np.array([3.0, 4.0, 0.0])
    centred = recentre_on_origin(world_to_camera, origin)
    np.testing.assert_allclose(
        camera_centre(centred), camera_centre(world_to_camera) - origin, atol=1e-12
    )
    np.testing.assert_array_equal(world_to_camera, before)
    np.testing.assert_array_equal(centred[:3, :3], world_to_camera[:3, :3])


def test_batches_broadcast_camera_by_camera():
    rng = np.random.default_rng(2)
    cameras = [random_camera(rng) for _ in range(3)]
    intrinsics = np.stack([k for k, _ in cameras])
    world_to_camera = np.stack([t for _, t in cameras])
    origin = [1.0, 2.0, 3.0]
    batched = projection_matrix(intrinsics, recentre_on_origin(world_to_camera, origin))
    assert batched.shape == (3, 4, 4) and batched.dtype == np.float64
    for index, (k, t) in enumerate(cameras):
        np.testing.assert_array_equal(
            batched[index], projection_matrix(k, recentre_on_origin(t, origin))
        )
    np.testing.assert_array_equal(batched[:, 3], np.tile([0.0, 0, 0, 1], (3, 1)))


def test_camera_centre_is_where_the_camera_sits():
    rng = np.random.default_rng(3)
    _, world_to_camera = random_camera(rng)
    centre = camera_centre(world_to_camera)
    assert np.allclose(world_to_camera @ np.append(centre, 1), [0, 0, 0, 1], atol=1e-12)


@pytest.mark.parametrize('origin', [[0.0, 0.0], [[1.0, 2.0, 3.0]] * 2])
def test_an_origin_that_is_not_one_point_is_refused(origin):
    with pytest.raises(ValueError):
        recentre_on_origin(np.eye(4), origin)
