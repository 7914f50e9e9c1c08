"""The compiled MSDA operator on CPU against the float64 grid_sample reference."""

import math

import pytest
import torch

from mmsparse4d.ops import (
    MSDA_FEATURE_GRADIENTS,
    MultiScaleDeformableAggregation,
    default_msda_feature_gradient,
    deformable_aggregation,
    deformable_aggregation_reference,
    msda_feature_gradient,
    msda_feature_gradient_mode,
    random_deformable_aggregation_inputs,
    set_msda_feature_gradient,
)
from mmsparse4d.registry import MODELS

# Two cameras with different level sizes (as with mixed-resolution camera groups).
TWO_CAMERAS = [[(7, 9), (4, 5), (2, 3)], [(6, 10), (3, 5), (2, 2)]]


def make_inputs(
    batch=2,
    shapes=TWO_CAMERAS,
    anchors=5,
    points=3,
    groups=2,
    channels=6,
    dtype=torch.float64,
    seed=0,
    requires_grad=False,
):
    generator = torch.Generator().manual_seed(seed)
    inputs = random_deformable_aggregation_inputs(
        batch, shapes, anchors, points, groups, channels, dtype=dtype, generator=generator
    )
    if requires_grad:
        for index in (0, 3, 4):
            inputs[index].requires_grad_(True)
    return inputs


@pytest.mark.parametrize(
    'case',
    [
        dict(batch=1, shapes=[[(5, 7)]], anchors=4, points=2, groups=1, channels=3),
        dict(batch=2, shapes=TWO_CAMERAS, anchors=6, points=4, groups=2, channels=8),
        dict(batch=3, shapes=TWO_CAMERAS * 2, anchors=7, points=3, groups=8, channels=40),
        # C not a multiple of 32 but divisible by G.
        dict(batch=1, shapes=TWO_CAMERAS, anchors=5, points=13, groups=3, channels=24),
        dict(batch=2, shapes=TWO_CAMERAS, anchors=0, points=3, groups=2, channels=6),
    ],
    ids=['one-camera', 'two-cameras', 'four-cameras-b3', 'c24-g3', 'zero-anchors'],
)
def test_forward_matches_reference(case):
    inputs = make_inputs(**case, seed=len(str(case)))
    output = deformable_aggregation(*inputs)
    expected = deformable_aggregation_reference(*inputs)
    assert output.shape == (case['batch'], case['anchors'], case['channels'])
    assert output.dtype == torch.float64
    torch.testing.assert_close(output, expected, rtol=1e-12, atol=1e-12)
    if case['anchors']:
        assert expected.abs().max() > 0.1, 'the case must sample something'


def test_output_is_fresh_not_stale_memory():
    inputs = make_inputs(seed=1)
    first = deformable_aggregation(*inputs)
    torch.empty(10_000_000, dtype=torch.float64).fill_(float('nan'))  # poison the allocator
    second = deformable_aggregation(*inputs)
    assert torch.equal(first, second)


SPECIAL_VALUES = [0.0, 1.0, -0.25, 1.25, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize('value', SPECIAL_VALUES, ids=str)
@pytest.mark.parametrize('axis', [0, 1], ids=['x', 'y'])
def test_locations_not_strictly_inside_contribute_nothing(value, axis):
    features, shape, start, location, weights = make_inputs(seed=2)
    # Every even anchor's samples get the special value on one axis.
    special = location.clone()
    special[:, ::2, ..., axis] = value
    output = deformable_aggregation(features, shape, start, special, weights)
    assert torch.isfinite(output).all()
    assert torch.equal(output[:, ::2], torch.zeros_like(output[:, ::2]))
    torch.testing.assert_close(
        output[:, 1::2], deformable_aggregation(features, shape, start, location, weights)[:, 1::2]
    )
    torch.testing.assert_close(
        output, deformable_aggregation_reference(features, shape, start, special, weights)
    )


def test_locations_just_inside_the_border_sample_the_border_pixel():
    features, shape, start, location, weights = make_inputs(batch=1, shapes=[[(4, 6)]], seed=3)
    location[..., 0] = 1e-9  # half a pixel left of the first pixel centre: weight goes 50/50
    location[..., 1] = 1 - 1e-9
    output = deformable_aggregation(features, shape, start, location, weights)
    torch.testing.assert_close(
        output, deformable_aggregation_reference(features, shape, start, location, weights)
    )
    assert output.abs().max() > 0


def test_backward_matches_reference():
    inputs = make_inputs(batch=2, anchors=6, points=4, groups=3, channels=9, requires_grad=True)
    grad_output = torch.randn(
        2, 6, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(4)
    )
    differentiable = (inputs[0], inputs[3], inputs[4])
    grads = torch.autograd.grad(deformable_aggregation(*inputs), differentiable, grad_output)
    expected = torch.autograd.grad(
        deformable_aggregation_reference(*inputs), differentiable, grad_output
    )
    for name, grad, reference in zip(
        ('features', 'location', 'weights'), grads, expected, strict=True
    ):
        torch.testing.assert_close(grad, reference, rtol=1e-10, atol=1e-10, msg=name)
        assert reference.abs().max() > 0, name


def test_gradcheck():
    features, shape, start, location, weights = make_inputs(
        batch=2, anchors=3, points=2, groups=2, channels=4, requires_grad=True, seed=5
    )

    def function(features, location, weights):
        return deformable_aggregation(features, shape, start, location, weights)

    assert torch.autograd.gradcheck(function, (features, location, weights), eps=1e-6, atol=1e-7)


def test_gradients_of_invalid_samples_are_zero_and_finite():
    features, shape, start, location, weights = make_inputs(seed=6)
    location = location.clone()
    location[:, 0, 0, 0] = torch.tensor([math.nan, 0.5], dtype=torch.float64)
    location[:, 1, 0, 1] = torch.tensor([0.5, math.inf], dtype=torch.float64)
    for tensor in (features, location, weights):
        tensor.requires_grad_(True)
    output = deformable_aggregation(features, shape, start, location, weights)
    grad_features, grad_location, grad_weights = torch.autograd.grad(
        output.sum(), (features, location, weights)
    )
    for grad in (grad_features, grad_location, grad_weights):
        assert torch.isfinite(grad).all()
    assert torch.equal(grad_location[:, 0, 0, 0], torch.zeros_like(grad_location[:, 0, 0, 0]))
    assert torch.equal(grad_weights[:, 1, 0, 1], torch.zeros_like(grad_weights[:, 1, 0, 1]))


def test_backward_is_deterministic():
    inputs = make_inputs(batch=2, anchors=8, points=4, groups=2, channels=8, requires_grad=True)
    differentiable = (inputs[0], inputs[3], inputs[4])
    first = torch.autograd.grad(deformable_aggregation(*inputs).sum(), differentiable)
    second = torch.autograd.grad(deformable_aggregation(*inputs).sum(), differentiable)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    'dtype, tolerance',
    [(torch.float32, 1e-5), (torch.bfloat16, 3e-2), (torch.float16, 3e-3)],
    ids=['fp32', 'bf16', 'fp16'],
)
def test_reduced_precision_accumulates_in_fp32(dtype, tolerance):
    inputs64 = make_inputs(batch=1, anchors=16, points=13, groups=8, channels=64, seed=7)
    inputs = [t.to(dtype) if t.is_floating_point() else t for t in inputs64]
    output = deformable_aggregation(*inputs)
    assert output.dtype == dtype
    # Compare against float64 on the rounded inputs, so only accumulation error remains.
    expected = deformable_aggregation_reference(
        *[t.double() if t.is_floating_point() else t for t in inputs]
    )
    torch.testing.assert_close(output.double(), expected, rtol=tolerance, atol=tolerance)

    for tensor in (inputs[0], inputs[3], inputs[4]):
        tensor.requires_grad_(True)
    grads = torch.autograd.grad(
        deformable_aggregation(*inputs).float().sum(), (inputs[0], inputs[4])
    )
    assert all(grad.dtype == dtype and torch.isfinite(grad).all() for grad in grads)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=str)
def test_the_cpu_kernel_sums_half_gradients_in_fp32_whatever_the_cuda_setting(dtype):
    inputs = [
        t.to(dtype) if t.is_floating_point() else t
        for t in make_inputs(batch=1, anchors=16, points=13, groups=8, channels=64, seed=3)
    ]
    grad_output = torch.randn(1, 16, 64, generator=torch.Generator().manual_seed(1)).to(dtype)
    backward = torch.ops.mmsparse4d.deformable_aggregation_backward
    previous = msda_feature_gradient()
    grads = {}
    for mode in (*MSDA_FEATURE_GRADIENTS, None):
        with msda_feature_gradient_mode(mode):
            assert msda_feature_gradient() == mode
            leaves = [inputs[0].clone().requires_grad_(True)]
            (grads[mode],) = torch.autograd.grad(
                deformable_aggregation(leaves[0], *inputs[1:]), leaves, grad_output
            )
        assert msda_feature_gradient() == previous  # restored
    first = grads['by_destination']
    assert all(torch.equal(grad, first) for grad in grads.values())
    # The operator's schema takes the mode's code as its last, defaulted argument.
    direct = backward(grad_output, *inputs, 1)[0]
    assert torch.equal(direct, first) and torch.equal(backward(grad_output, *inputs)[0], direct)
    with pytest.raises(RuntimeError, match="'feature_gradient' must be 0"):
        backward(grad_output, *inputs, 3)


def test_an_unknown_feature_gradient_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="got 'fp32'"):
        set_msda_feature_gradient('fp32')
    assert msda_feature_gradient() is None  # the default: per dtype and channels
    with msda_feature_gradient_mode('by_destination'):
        set_msda_feature_gradient(None)  # None restores the default
        assert msda_feature_gradient() is None


@pytest.mark.parametrize(
    ('dtype', 'channels', 'groups', 'expected'),
    [
        (torch.float16, 256, 8, 'atomic_own_format'),
        (torch.float16, 96, 4, 'atomic_own_format'),
        (torch.bfloat16, 256, 8, 'by_destination'),  # measured twice as fast as fp32 sums
        (torch.bfloat16, 128, 8, 'by_destination'),
        (torch.bfloat16, 96, 4, 'atomic_float32'),  # measured: the lists cost twice the atomics
        (torch.bfloat16, 256, 64, 'atomic_float32'),  # 4 channels a group: no 8-wide vectors
        (torch.float32, 256, 8, 'atomic_float32'),
        (torch.float64, 256, 8, 'atomic_float32'),
    ],
)
def test_the_default_feature_gradient_follows_dtype_and_channels(dtype, channels, groups, expected):
    assert default_msda_feature_gradient(dtype, channels, groups) == expected


def test_the_default_is_logged_once_per_dtype_and_shape(capsys):
    from mmsparse4d.ops.deformable_aggregation import _tell_default

    _tell_default.cache_clear()
    for _ in range(3):
        _tell_default(torch.bfloat16, 256, 8, 'by_destination')
    out = capsys.readouterr()
    lines = [
        line for line in (out.out + out.err).splitlines() if 'sums the bfloat16 feature' in line
    ]
    assert len(lines) == 1 and 'C = 256, G = 8) by_destination, the default' in lines[0]


def test_int32_metadata_is_accepted():
    features, shape, start, location, weights = make_inputs(seed=8)
    torch.testing.assert_close(
        deformable_aggregation(features, shape.int(), start.int(), location, weights),
        deformable_aggregation(features, shape, start, location, weights),
    )


def _replace(inputs, index, value):
    inputs = list(inputs)
    inputs[index] = value
    return inputs


@pytest.mark.parametrize(
    'index, make_bad, message',
    [
        (0, lambda t: t.float(), "'sampling_location' has dtype Double but 'features' has Float"),
        (4, lambda t: t.float(), "'weights' has dtype Float but 'features' has Double"),
        (1, lambda t: t.double(), "'spatial_shape' must be an int32 or int64"),
        (2, lambda t: t.double(), "'scale_start_index' must be an int32 or int64"),
        (0, lambda t: t.long(), "'features' must be a floating-point"),
        (0, lambda t: t[0], "'features' must have shape [B, F, C]"),
        (3, lambda t: t[:, :, :, :1], "'sampling_location' has 1 in dim 3 (cameras)"),
        (4, lambda t: t[..., :1, :], "'weights' has 1 in dim 4 (levels)"),
        (4, lambda t: t[:1], "'weights' has 1 in dim 0 (batch)"),
        (2, lambda t: t[:, :1], "'scale_start_index' has 1 in dim 1 (levels)"),
        (
            3,
            lambda t: t.transpose(1, 2).contiguous().transpose(1, 2),
            "'sampling_location' must be contiguous",
        ),
        (
            0,
            lambda t: t.transpose(0, 1).contiguous().transpose(0, 1),
            "'features' must be contiguous",
        ),
    ],
)
def test_bad_arguments_are_named(index, make_bad, message):
    inputs = make_inputs(seed=9)
    with pytest.raises(RuntimeError) as error:
        deformable_aggregation(*_replace(inputs, index, make_bad(inputs[index])))
    assert message in str(error.value)


def test_bad_values_are_named():
    features, shape, start, location, weights = make_inputs(seed=10)
    with pytest.raises(RuntimeError, match="channels of 'features' \\(6\\) must be divisible"):
        deformable_aggregation(
            features, shape, start, location, weights.repeat(1, 1, 1, 1, 1, 2)[..., :4].contiguous()
        )
    with pytest.raises(RuntimeError, match="'features' has no channels"):
        deformable_aggregation(features[..., :0], shape, start, location, weights[..., :0])
    with pytest.raises(RuntimeError, match="'scale_start_index' places camera 1, level 1"):
        deformable_aggregation(features, shape, start + 5, location, weights)
    # 2^32 x 2^32 wraps to 0 rows in int64: refused, not read out of bounds.
    huge = shape.clone()
    huge[1, 1] = torch.tensor([2**32, 2**32])
    with pytest.raises(
        RuntimeError, match='4294967296x4294967296 at camera 1, level 1: more pixels'
    ):
        deformable_aggregation(features, huge, start, location, weights)
    with pytest.raises(RuntimeError, match='camera 0, level 0 .* from row 4611686018427387904'):
        deformable_aggregation(features, shape, start + 2**62, location, weights)
    with pytest.raises(RuntimeError, match="'spatial_shape' holds a non-positive size"):
        deformable_aggregation(features, shape * torch.tensor([1, 0]), start, location, weights)


def test_opcheck_schema_fake_kernel_and_autograd_registration():
    inputs = make_inputs(batch=1, anchors=3, points=2, groups=2, channels=4, requires_grad=True)
    torch.library.opcheck(torch.ops.mmsparse4d.deformable_aggregation.default, inputs)


def test_traces_into_one_graph_with_torch_compile():
    inputs = make_inputs(batch=1, anchors=3, points=2, groups=2, channels=4, requires_grad=True)
    compiled = torch.compile(deformable_aggregation, backend='aot_eager', fullgraph=True)
    output = compiled(*inputs)
    torch.testing.assert_close(output, deformable_aggregation(*inputs))
    output.sum().backward()
    assert inputs[0].grad is not None and inputs[4].grad is not None


def test_registered_module_builds_and_matches_both_implementations(caplog):
    inputs = make_inputs(seed=11)
    compiled = MODELS.build(dict(type='MultiScaleDeformableAggregation'))
    reference = MODELS.build(
        dict(type='MultiScaleDeformableAggregation', implementation='reference')
    )
    assert isinstance(compiled, MultiScaleDeformableAggregation)
    torch.testing.assert_close(compiled(*inputs), reference(*inputs))
    assert 'reference' in repr(reference)


def test_grid_sample_implementation_also_samples_just_outside_the_image():
    # NVIDIA TAO's path without its op: grid_sample with zero padding at every location.
    features, shape, start, location, weights = make_inputs(batch=1, shapes=[[(4, 6)]], seed=4)
    grid_sample = MultiScaleDeformableAggregation(implementation='grid_sample')
    torch.testing.assert_close(
        grid_sample(features, shape, start, location, weights),
        deformable_aggregation(features, shape, start, location, weights),
    )
    # A quarter cell left of the image: the operator drops it, bilinear sampling with zero
    # padding gives the first column a quarter of its value.
    outside = location.clone()
    outside[..., 0] = -0.25 / 6
    outside[..., 1] = 0.5 / 4  # the centre of row 0
    dropped = deformable_aggregation(features, shape, start, outside, weights)
    assert torch.equal(dropped, torch.zeros_like(dropped))
    one_cell = location.clone()
    one_cell[..., 0] = 0.5 / 6  # the centre of column 0
    one_cell[..., 1] = 0.5 / 4
    torch.testing.assert_close(
        grid_sample(features, shape, start, outside, weights),
        0.25 * deformable_aggregation(features, shape, start, one_cell, weights),
    )


def test_module_rejects_unknown_implementation():
    with pytest.raises(ValueError, match="implementation='cuda_fast' is not one of"):
        MultiScaleDeformableAggregation(implementation='cuda_fast')


def test_clustered_locations_keep_each_anchors_points_together_in_each_camera():
    from mmsparse4d.ops import clustered_locations

    location = torch.zeros(2, 50, 13, 3, 2, dtype=torch.float16)
    generator = torch.Generator().manual_seed(0)
    together = clustered_locations(location, 0.05, generator)
    assert together.shape == location.shape and together.dtype == torch.float16
    together = together.double()
    extent = together.amax(dim=2) - together.amin(dim=2)  # per anchor and camera
    assert (extent <= 0.05 + 1e-3).all() and ((together > 0) & (together < 1)).all()
    seen = clustered_locations(location, 0.05, generator, seen_fraction=0.5)
    inside = ((seen > 0) & (seen < 1)).all(-1).all(2)  # [B, A, N]: all points or none
    outside = ((seen > 1) | (seen < 0)).any(-1).all(2)
    assert (inside | outside).all() and 0.3 < inside.double().mean() < 0.7
