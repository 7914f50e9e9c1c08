"""Deformable feature aggregation over a dynamic number of cameras."""

import pytest
import torch

from mmsparse4d.datasets.synthetic import look_at_camera
from mmsparse4d.models.layers import DeformableFeatureAggregation, project_points
from mmsparse4d.ops import camera_level_shapes, pack_spatial_shapes
from mmsparse4d.testing import rounding_tolerance

C, G, L = 32, 4, 2


def cameras(count):
    """Calibrated cameras around the origin looking at it, their projections and sizes."""
    import numpy as np

    mats = []
    for k in range(count):
        angle = 2 * np.pi * k / count
        cam = look_at_camera(
            'c', np.array([8 * np.cos(angle), 8 * np.sin(angle), 4.0]), np.zeros(3), 70, 96, 64, 30
        )
        mats.append(torch.tensor(cam.projection, dtype=torch.float32))
    return torch.stack(mats)[None], torch.tensor([[96.0, 64.0]] * count)[None]


def features_for(count, generator):
    shapes = [camera_level_shapes((64, 96), (8, 16))] * count
    spatial_shape, start = pack_spatial_shapes(shapes)
    pixels = int(spatial_shape.prod(-1).sum())
    return torch.randn(1, pixels, C, generator=generator), spatial_shape, start


def build(**kwargs):
    module = DeformableFeatureAggregation(
        embed_dims=C, num_groups=G, num_levels=L, max_num_cams=6, **kwargs
    )
    module.init_weights()
    return module


@pytest.mark.parametrize('use_camera_embed', [True, False])
def test_dynamic_camera_count_and_both_implementations(use_camera_embed):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    compiled = build(use_camera_embed=use_camera_embed, residual_mode='cat')
    reference = build(
        use_camera_embed=use_camera_embed, residual_mode='cat', implementation='reference'
    )
    reference.load_state_dict(compiled.state_dict())
    anchor = torch.zeros(1, 10, 11)
    anchor[..., :2] = torch.randn(1, 10, 2, generator=generator)
    anchor[..., 2] = 0.9
    anchor[..., 3:6] = 0.0  # log sizes: 1 m boxes
    anchor[..., 7] = 1.0
    feature, embed = (
        torch.randn(1, 10, C, generator=generator),
        torch.randn(1, 10, C, generator=generator),
    )
    for count in (3, 5):
        maps = features_for(count, generator)
        projection, image_wh = cameras(count)
        out = compiled(feature, anchor, embed, maps, projection, image_wh)
        assert out.shape == (1, 10, 2 * C)
        # The op and grid_sample add the same samples in other orders (4 corners of each
        # point, level and camera; unit-scale terms: softmax weights, ~1 features), then the
        # output projection carries the difference on. Measured: 3e-7 (AVX-512, AVX2,
        # default kernels); the bound ~3e-5.
        samples = 4 * compiled.num_pts * count * L
        tolerance = rounding_tolerance(out.dtype, samples, depth=2)
        torch.testing.assert_close(
            out, reference(feature, anchor, embed, maps, projection, image_wh), **tolerance
        )
        assert out[..., :C].abs().max() > 0
    weights = compiled.weights(feature, embed, cameras(3)[0])
    assert weights.shape == (1, 10, 13, 3, L, G)
    torch.testing.assert_close(
        weights.sum(dim=(2, 3, 4)), torch.ones(1, 10, G)
    )  # softmax per group
    with pytest.raises(ValueError, match='7 cameras, more than max_num_cams=6'):
        compiled.weights(feature, embed, cameras(7)[0])


def test_points_behind_a_camera_are_not_sampled():
    projection, image_wh = cameras(2)
    ahead = torch.zeros(1, 1, 1, 3)  # the origin: in front of both cameras
    behind = (projection[0, 0].inverse() @ torch.tensor([0.0, 0.0, -5.0, 1.0]))[:3].reshape(
        1, 1, 1, 3
    )
    locations = project_points(torch.cat([ahead, behind], dim=1), projection, image_wh)
    assert ((locations[0, 0] > 0) & (locations[0, 0] < 1)).all()
    assert (locations[0, 1, 0, 0] == -1).all()
    # Upstream's and TAO's projection (a compatibility setting): depth clamped to 1e-5.
    clamped = project_points(behind, projection, image_wh, behind_camera='clamp_depth')
    pixels = torch.einsum('nij,j->ni', projection[0], torch.cat([behind.flatten(), torch.ones(1)]))
    expected = pixels[:, :2] / pixels[:, 2:3].clamp(min=1e-5) / image_wh[0]
    torch.testing.assert_close(clamped[0, 0, 0], expected)
    with pytest.raises(ValueError, match="behind_camera must be one of .* got 'drop'"):
        DeformableFeatureAggregation(embed_dims=32, num_groups=4, behind_camera='drop')


def test_training_drop_and_bad_arguments():
    module = build(attn_drop=0.5)
    module.train()
    torch.manual_seed(1)
    weights = module.weights(torch.randn(1, 50, C), torch.randn(1, 50, C), cameras(2)[0])
    assert (weights == 0).float().mean() > 0.3
    with pytest.raises(ValueError, match='must be divisible by num_groups'):
        DeformableFeatureAggregation(embed_dims=30, num_groups=4)
    with pytest.raises(ValueError, match="residual_mode must be 'add' or 'cat'"):
        DeformableFeatureAggregation(embed_dims=32, num_groups=4, residual_mode='sum')


def test_projection_stays_float32_under_autocast():
    from mmsparse4d.models.layers import project_points

    points = torch.tensor([[[[3.217, -1.113, 0.9]]]])
    projection = torch.tensor(
        [[[[800.0, 0, 480, 0], [0, 800, 272, 0], [0, 0, 1, 0], [0, 0, 0, 1]]]]
    )
    projection[..., 2, 3] = 20.0  # 20 m in front
    image_wh = torch.tensor([[[960.0, 544.0]]])
    exact = project_points(points, projection, image_wh)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = project_points(points, projection, image_wh)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact)
