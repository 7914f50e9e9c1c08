"""Key points and anchor propagation."""

import math

import pytest
import torch

from mmsparse4d.models.layers import CORNER_FIXED_POINTS, KeyPointsGenerator
from mmsparse4d.structures import COS_YAW, SIN_YAW, encode_box


def anchor_of(box):
    return encode_box(torch.tensor([[box]], dtype=torch.float32))


def test_fixed_points_follow_size_and_yaw():
    generator = KeyPointsGenerator(embed_dims=8, num_learnable_pts=0)
    anchor = anchor_of([1.0, 2.0, 0.5, 2.0, 1.0, 1.0, math.pi / 2, 0, 0, 0])
    points = generator(anchor)[0, 0]
    assert points.shape == (7, 3)
    torch.testing.assert_close(points[0], torch.tensor([1.0, 2.0, 0.5]))
    # +0.45 of w along the box's x axis, which yaw pi/2 turns to the world's +y.
    torch.testing.assert_close(points[1], torch.tensor([1.0, 2.9, 0.5]), atol=1e-6, rtol=0)
    torch.testing.assert_close(points[3], torch.tensor([0.55, 2.0, 0.5]), atol=1e-6, rtol=0)


def test_learned_points_stay_inside_the_box():
    torch.manual_seed(0)
    generator = KeyPointsGenerator(embed_dims=16)
    generator.init_weights()
    anchor = anchor_of([0, 0, 1.0, 2.0, 1.0, 2.0, 0.7, 0, 0, 0]).repeat(1, 5, 1)
    points = generator(anchor, torch.randn(1, 5, 16) * 10)
    assert points.shape == (1, 5, 13, 3)
    local = points[0, :, 7:] - torch.tensor([0, 0, 1.0])
    c, s = math.cos(0.7), math.sin(0.7)
    along = local[..., 0] * c + local[..., 1] * s
    across = -local[..., 0] * s + local[..., 1] * c
    assert (along.abs() <= 1.0 + 1e-5).all() and (across.abs() <= 0.5 + 1e-5).all()
    assert (local[..., 2].abs() <= 1.0 + 1e-5).all()
    with pytest.raises(ValueError, match='need the instance feature'):
        generator(anchor)


def test_projection_keeps_sin_and_cos_in_their_slots():
    anchor = anchor_of([1.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.3, 2.0, -1.0, 0.0])
    # Identity transform: upstream Sparse4D swaps sin and cos here.
    moved = KeyPointsGenerator.anchor_projection(anchor, torch.tensor([0.5]), torch.eye(4)[None])
    torch.testing.assert_close(moved[..., SIN_YAW], anchor[..., SIN_YAW])
    torch.testing.assert_close(moved[..., COS_YAW], anchor[..., COS_YAW])
    torch.testing.assert_close(moved[0, 0, :3], torch.tensor([2.0, -0.5, 0.5]))
    # A quarter turn about z turns the heading and the velocity with it.
    turn = torch.tensor([[0.0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])[None]
    turned = KeyPointsGenerator.anchor_projection(anchor, torch.tensor([0.0]), turn)
    torch.testing.assert_close(
        torch.atan2(turned[..., SIN_YAW], turned[..., COS_YAW]), torch.tensor([[0.3 + math.pi / 2]])
    )
    torch.testing.assert_close(turned[0, 0, 8:10], torch.tensor([1.0, 2.0]))


def covered(points, yaw, size):
    """Whether BEV points [P, 2] lie in a footprint of ``size`` (w, l) at the origin, turned
    by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    along = points[:, 0] * c + points[:, 1] * s
    across = -points[:, 0] * s + points[:, 1] * c
    return (along.abs() <= size[0] / 2) & (across.abs() <= size[1] / 2)


@pytest.mark.parametrize('turn', [0.2, 0.5, 0.9])
def test_only_corner_points_tell_which_way_the_yaw_is_off(turn):
    """An object turned by +turn or -turn from its anchor covers the same default points;
    with the corners the two differ (the reason for CORNER_FIXED_POINTS)."""
    size = (2.5, 1.2)  # a forklift's footprint
    anchor = anchor_of([0.0, 0.0, 1.0, size[0], size[1], 2.0, 0.0, 0, 0, 0])
    default = KeyPointsGenerator(embed_dims=8, num_learnable_pts=0)(anchor)[0, 0, :, :2]
    corners = KeyPointsGenerator(embed_dims=8, num_learnable_pts=0, fix_scale=CORNER_FIXED_POINTS)(
        anchor
    )[0, 0, :, :2]
    assert len(corners) == len(default) + 4
    assert torch.equal(covered(default, turn, size), covered(default, -turn, size))
    assert not torch.equal(covered(corners, turn, size), covered(corners, -turn, size))


def test_a_model_trains_with_the_corner_points():
    """The corner set is one config entry away:
    ``model.head.deformable_model.kps_generator.fix_scale``."""
    from mmsparse4d.testing import build_untrained_model, random_batch

    model = build_untrained_model(
        cfg_options={'model.head.deformable_model.kps_generator.fix_scale': CORNER_FIXED_POINTS}
    ).train()
    aggregation = next(m for m in model.modules() if hasattr(m, 'kps_generator'))
    assert aggregation.num_pts == len(CORNER_FIXED_POINTS) + 6  # + the learned points
    data = model.data_preprocessor(random_batch(), training=True)
    losses = model(**data, mode='loss')
    total = sum(value for key, value in losses.items() if 'loss' in key)
    total.backward()
    assert torch.isfinite(total)


def test_a_point_set_is_named_or_refused():
    named = KeyPointsGenerator(embed_dims=8, num_learnable_pts=0, fix_scale='v3_corners')
    typed = KeyPointsGenerator(embed_dims=8, num_learnable_pts=0, fix_scale=CORNER_FIXED_POINTS)
    assert torch.equal(named.fix_scale, typed.fix_scale) and named.num_pts == 11
    assert KeyPointsGenerator(embed_dims=8, fix_scale='v3').num_pts == 7 + 6
    with pytest.raises(ValueError, match="'corners' is not a known point set"):
        KeyPointsGenerator(embed_dims=8, fix_scale='corners')
