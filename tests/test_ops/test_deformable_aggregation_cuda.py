"""The CUDA kernels against the float64 reference (run on the GPU machines: -m gpu)."""

import math

import pytest
import torch
from torch import nn

from mmsparse4d.ops import (
    MSDA_FEATURE_GRADIENTS,
    MultiScaleDeformableAggregation,
    camera_level_shapes,
    clustered_locations,
    deformable_aggregation,
    deformable_aggregation_reference,
    msda_feature_gradient_mode,
    pack_spatial_shapes,
    random_deformable_aggregation_inputs,
)

pytestmark = pytest.mark.gpu

WAREHOUSE_CAMERA = camera_level_shapes((544, 960))  # strides 4/8/16/32
SMALL_CAMERA = camera_level_shapes((64, 96))
TOLERANCE = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2, torch.float64: 1e-12}


def cuda_inputs(
    batch,
    cams,
    anchors,
    points=13,
    groups=8,
    channels=256,
    dtype=torch.float32,
    seed=0,
    camera=WAREHOUSE_CAMERA,
    inside_fraction=0.44,
):
    generator = torch.Generator(device='cuda').manual_seed(seed)
    return random_deformable_aggregation_inputs(
        batch,
        [camera] * cams,
        anchors,
        points,
        groups,
        channels,
        dtype=dtype,
        device='cuda',
        inside_fraction=inside_fraction,
        generator=generator,
    )


def poison_allocator():
    """Leave NaN in the caching allocator's free blocks, so stale output memory shows."""
    free, _ = torch.cuda.mem_get_info()
    poison = torch.empty(int(free * 0.3) // 4, dtype=torch.float32, device='cuda')
    poison.fill_(math.nan)
    del poison


def reference64(inputs):
    return deformable_aggregation_reference(
        *[t.double() if t.is_floating_point() else t for t in inputs]
    )


def assert_matches_reference(inputs):
    expected = reference64(inputs)
    poison_allocator()
    output = deformable_aggregation(*inputs)
    torch.cuda.synchronize()
    tolerance = TOLERANCE[inputs[0].dtype]
    assert output.dtype == inputs[0].dtype
    assert torch.isfinite(output).all()
    torch.testing.assert_close(output.double(), expected, rtol=tolerance, atol=tolerance)
    assert expected.abs().max() > 1e-3


CASES = {
    'warehouse-n10': dict(batch=1, cams=10, anchors=900),
    'n1': dict(batch=1, cams=1, anchors=900),
    'n20': dict(batch=1, cams=20, anchors=900),
    'b4': dict(batch=4, cams=6, anchors=900),
    'denoising-a1220': dict(batch=1, cams=10, anchors=1220),
}


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize('case', list(CASES), ids=str)
def test_forward_matches_float64_reference(case, dtype):
    assert_matches_reference(cuda_inputs(**CASES[case], dtype=dtype, seed=len(case)))


@pytest.mark.parametrize(
    'channels, groups',
    [(24, 3), (40, 8), (6, 2), (512, 8), (96, 1), (48, 3), (192, 8)],
    ids=['c24g3', 'c40g8', 'c6g2', 'c512g8', 'c96g1', 'c48g3', 'c192g8'],
)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.float64], ids=str)
def test_odd_channel_counts_take_narrower_vectors(channels, groups, dtype):
    inputs = cuda_inputs(
        2, 3, 37, points=5, groups=groups, channels=channels, dtype=dtype, camera=SMALL_CAMERA
    )
    assert_matches_reference(inputs)


def test_misaligned_features_view_is_handled():
    features, *rest = cuda_inputs(1, 2, 50, points=4, camera=SMALL_CAMERA, dtype=torch.float16)
    storage = torch.empty(features.numel() + 1, dtype=features.dtype, device='cuda')
    shifted = storage[1:].view_as(features)  # 2-byte offset: no 16-byte loads possible
    shifted.copy_(features)
    assert_matches_reference((shifted, *rest))


@pytest.mark.parametrize('value', [0.0, 1.0, -0.5, 1.5, math.nan, math.inf, -math.inf], ids=str)
def test_locations_not_strictly_inside_contribute_nothing(value):
    features, shape, start, location, weights = cuda_inputs(1, 4, 64, camera=SMALL_CAMERA)
    special = location.clone()
    special[:, ::2, :, :, 1] = value
    output = deformable_aggregation(features, shape, start, special, weights)
    assert torch.isfinite(output).all()
    assert torch.equal(output[:, ::2], torch.zeros_like(output[:, ::2]))
    torch.testing.assert_close(
        output[:, 1::2], deformable_aggregation(features, shape, start, location, weights)[:, 1::2]
    )


@pytest.mark.parametrize('pattern', ['cameras-outside', 'sparse'])
@pytest.mark.parametrize('channels, groups', [(256, 8), (96, 4)], ids=['c256g8', 'c96g4'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_lists_without_samples_inside_change_nothing(pattern, channels, groups, dtype):
    # A warp compacts each list of 32 candidate samples to the valid ones and runs its copies
    # ahead within the list: whole lists with no sample inside (four cameras outside, visited
    # camera-major) or with one or two (5% inside) sit between lists that have many.
    features, shape, start, location, weights = cuda_inputs(
        1,
        10,
        300,
        groups=groups,
        channels=channels,
        dtype=dtype,
        seed=11,
        inside_fraction=0.05 if pattern == 'sparse' else 0.44,
    )
    if pattern == 'cameras-outside':
        location = location.clone()
        location[:, :, :, 1:5] = -0.25  # [B, A, P, N, 2]: cameras 1-4
        location[:, :, :, 7] = 1.25
    assert_matches_reference((features, shape, start, location, weights))


def test_forward_is_deterministic():
    inputs = cuda_inputs(1, 10, 900, dtype=torch.float16)
    assert torch.equal(deformable_aggregation(*inputs), deformable_aggregation(*inputs))


def assert_gradients_match_reference(inputs):
    """Gradients of features, locations and weights against float64 autograd."""
    dtype = inputs[0].dtype
    differentiable = [inputs[0], inputs[3], inputs[4]]
    for tensor in differentiable:
        tensor.requires_grad_(True)
    batch, anchors = inputs[3].shape[:2]
    grad_output = torch.randn(
        batch, anchors, inputs[0].shape[-1], device='cuda', dtype=torch.float64
    )
    grads = torch.autograd.grad(
        deformable_aggregation(*inputs), differentiable, grad_output.to(dtype)
    )
    inputs64 = [
        t.detach().double().requires_grad_(True) if t.is_floating_point() else t for t in inputs
    ]
    expected = torch.autograd.grad(
        deformable_aggregation_reference(*inputs64),
        [inputs64[0], inputs64[3], inputs64[4]],
        grad_output.to(dtype).double(),
    )
    # Location gradients scale with the map size and sum the channels: relative tolerance.
    for name, grad, reference in zip(
        ('features', 'location', 'weights'), grads, expected, strict=True
    ):
        assert grad.dtype == dtype and torch.isfinite(grad).all(), name
        scale = reference.abs().max().item()
        tolerance = TOLERANCE[dtype] * 10 * max(scale, 1.0)
        torch.testing.assert_close(grad.double(), reference, rtol=0, atol=tolerance, msg=name)


@pytest.fixture(params=[*MSDA_FEATURE_GRADIENTS, None])
def feature_gradient(request):
    """Every way of summing the feature gradient, the setting restored afterwards."""
    with msda_feature_gradient_mode(request.param):
        yield request.param


# C = 96, G = 4 (the small configs): 4 channels a lane, one warp with 8 lanes idle; C = 48,
# G = 3: 2 channels a lane, groups of 8 lanes; C = 192, G = 8: 8 channels a lane (2-byte).
@pytest.mark.parametrize(
    'channels, groups',
    [(256, 8), (96, 4), (48, 3), (192, 8)],
    ids=['c256g8', 'c96g4', 'c48g3', 'c192g8'],
)
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_gradients_match_float64_reference(dtype, channels, groups, feature_gradient):
    inputs = cuda_inputs(
        2,
        3,
        64,
        points=6,
        groups=groups,
        channels=channels,
        dtype=dtype,
        camera=SMALL_CAMERA,
        seed=3,
    )
    assert_gradients_match_reference(inputs)


# A block's shared memory holds 16 bytes of metadata per (camera, level), and the forward's
# copies 32 KB at fp32 C = 256 or fp16 C = 512 (8 warps): from 48 cameras of 4 levels the
# forward, from about 560 the backward, and from 768 the feature gradient by destination
# need more than the 48 KB a launch takes unasked.
@pytest.mark.parametrize('cams', [64, 1000], ids=lambda n: f'n{n}')
@pytest.mark.parametrize(
    'dtype, channels', [(torch.float32, 256), (torch.float16, 512)], ids=['fp32-c256', 'fp16-c512']
)
def test_many_cameras_take_more_shared_memory(cams, dtype, channels, feature_gradient):
    inputs = cuda_inputs(
        1, cams, 24, points=2, channels=channels, dtype=dtype, camera=camera_level_shapes((32, 32))
    )
    assert_matches_reference(inputs)
    assert_gradients_match_reference(inputs)


def pixel_centre_inputs(dtype, anchors, points, channels=64, groups=4, seed=0):
    """Every sample sits on the centre of one of the four pixels of a 2x2 map.

    Bilinear weights are then exactly (1, 0, 0, 0), attention weights are 1 and the
    output gradient is -1, 0 or +1, so every contribution to a pixel's feature gradient is
    -1, 0 or +1 and every partial sum is an integer of magnitude <= anchors * points.
    """
    generator = torch.Generator(device='cuda').manual_seed(seed)
    shape, start = pack_spatial_shapes([[(2, 2)]], 'cuda')
    features = torch.randn(1, 4, channels, device='cuda', generator=generator).to(dtype)
    pixel = torch.randint(0, 4, (1, anchors, points, 1), device='cuda', generator=generator)
    location = torch.stack([(pixel % 2 + 0.5) / 2, (pixel // 2 + 0.5) / 2], dim=-1).to(dtype)
    weights = torch.ones(1, anchors, points, 1, 1, groups, device='cuda', dtype=dtype)
    grad_output = torch.randint(-1, 2, (1, anchors, channels), device='cuda', generator=generator)
    return (features, shape, start, location, weights), grad_output.to(dtype)


@pytest.mark.parametrize('channels', [64, 128, 256], ids=lambda c: f'c{c}')
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16], ids=str)
def test_half_feature_gradients_summed_in_own_format_are_exact_on_integer_sums(
    dtype, channels, feature_gradient
):
    # 64 anchors x 4 points = 256 contributions per pixel; every partial sum is an integer
    # of magnitude <= 256, exact in fp16 (11-bit significand) and bf16 (8-bit: integers up
    # to 256). Any misplaced, dropped or doubled addition shows as an integer error. 64,
    # 128 and 256 channels take 2, 4 and 8 channels per lane: packed pairs and the two
    # vector reductions.
    inputs, grad_output = pixel_centre_inputs(dtype, anchors=64, points=4, channels=channels)
    features = inputs[0].requires_grad_(True)
    (grad,) = torch.autograd.grad(deformable_aggregation(*inputs), [features], grad_output)
    # Pixel p's gradient: the output gradients of every sample on p, summed.
    location = inputs[3].float()
    pixel = ((location[..., 0] * 2 - 0.5) + 2 * (location[..., 1] * 2 - 0.5)).round().long()
    expected = torch.zeros(4, grad_output.shape[-1], device='cuda', dtype=torch.float64)
    per_sample = grad_output.double()[0, :, None, :].expand(-1, pixel.shape[2], -1)
    expected.index_add_(
        0, pixel[0, :, :, 0].reshape(-1), per_sample.reshape(-1, per_sample.shape[-1])
    )
    assert expected.abs().max() > 8  # many contributions land on one pixel
    assert torch.equal(grad[0].double(), expected)


@pytest.mark.parametrize(
    'dtype, mode',
    [
        (torch.float16, 'atomic_float32'),
        (torch.bfloat16, 'atomic_float32'),
        (torch.float16, 'by_destination'),
        (torch.bfloat16, 'by_destination'),
    ],
    ids=['fp16-atomic-fp32', 'bf16-atomic-fp32', 'fp16-by-destination', 'bf16-by-destination'],
)
def test_fp32_sums_round_the_feature_gradient_once(dtype, mode):
    # Many random contributions per pixel: summed in fp32, the result is the float64
    # gradient rounded once to the format (to within fp32's own summation error).
    inputs, _ = pixel_centre_inputs(dtype, anchors=256, points=8, seed=1)
    grad_output = torch.rand(1, 256, 64, device='cuda', dtype=torch.float64).to(dtype)
    features = inputs[0].requires_grad_(True)
    with msda_feature_gradient_mode(mode):
        (grad,) = torch.autograd.grad(deformable_aggregation(*inputs), [features], grad_output)
    inputs64 = [t.detach().double() if t.is_floating_point() else t for t in inputs]
    inputs64[0].requires_grad_(True)
    (expected,) = torch.autograd.grad(
        deformable_aggregation_reference(*inputs64), [inputs64[0]], grad_output.double()
    )
    unit_roundoff = torch.finfo(dtype).eps / 2
    # 2048 positive terms of at most 1: fp32's recursive sum errs by <= 2048 * 2^-24 * sum.
    fp32_error = 2048 * 2.0**-24 * expected.abs()
    torch.testing.assert_close(
        grad.double(), expected, rtol=unit_roundoff * 1.01, atol=fp32_error.max().item()
    )


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize('case', ['warehouse-n10', 'b4', 'denoising-a1220', 'clustered'], ids=str)
def test_feature_gradient_by_destination_equals_the_atomic_sums(case, dtype):
    # The same sums in another order: equal to fp32's summation error, which grows with
    # the contributions per pixel (bounded here by anchors x points x 4 corners' share).
    if case == 'clustered':
        # Each anchor's points within 2% of the image in every camera: the coarse levels'
        # pixels gather hundreds of corners (rows of many pieces).
        inputs = list(cuda_inputs(batch=2, cams=4, anchors=900, dtype=dtype, seed=4))
        generator = torch.Generator(device='cuda').manual_seed(11)
        inputs[3] = clustered_locations(inputs[3], 0.02, generator)
    else:
        inputs = cuda_inputs(**CASES[case], dtype=dtype, seed=len(case) + 7)
    grad_output = torch.randn_like(deformable_aggregation(*inputs))
    grads = {}
    for mode in ('atomic_float32', 'by_destination'):
        features = inputs[0].detach().requires_grad_(True)
        poison_allocator()  # rows nobody samples must be written as zeros, not left stale
        with msda_feature_gradient_mode(mode):
            (grads[mode],) = torch.autograd.grad(
                deformable_aggregation(features, *inputs[1:]), [features], grad_output
            )
    atomic, by_destination = grads['atomic_float32'], grads['by_destination']
    assert by_destination.dtype == dtype and torch.isfinite(by_destination).all()
    untouched = (atomic == 0).all(-1)  # rows nobody samples: zeros, whatever the order
    assert untouched.any() and (by_destination[untouched] == 0).all()
    scale = atomic.double().abs().max().item()
    # fp32 sums of up to tens of thousands of terms, then one rounding to the dtype.
    tolerance = (torch.finfo(dtype).eps + 2**15 * 2.0**-24) * scale
    torch.testing.assert_close(by_destination.double(), atomic.double(), rtol=0, atol=tolerance)


def test_gradcheck_float64():
    features, shape, start, location, weights = cuda_inputs(
        1, 2, 5, points=3, groups=2, channels=4, dtype=torch.float64, camera=[(5, 7), (3, 4)]
    )
    for tensor in (features, location, weights):
        tensor.requires_grad_(True)

    def function(features, location, weights):
        return deformable_aggregation(features, shape, start, location, weights)

    assert torch.autograd.gradcheck(function, (features, location, weights), eps=1e-6, atol=1e-7)


def test_warehouse_backward_runs_and_matches_cpu_kernel_in_fp32():
    inputs = cuda_inputs(1, 10, 900, seed=5)
    for index in (0, 3, 4):
        inputs[index].requires_grad_(True)
    grads = torch.autograd.grad(
        deformable_aggregation(*inputs).square().sum(), [inputs[0], inputs[3], inputs[4]]
    )
    cpu = [t.detach().cpu().requires_grad_(t.requires_grad) for t in inputs]
    expected = torch.autograd.grad(
        deformable_aggregation(*cpu).square().sum(), [cpu[0], cpu[3], cpu[4]]
    )
    for grad, reference in zip(grads, expected, strict=True):
        torch.testing.assert_close(grad.cpu(), reference, rtol=1e-4, atol=1e-5)


def test_int32_metadata_and_bad_devices():
    features, shape, start, location, weights = cuda_inputs(1, 2, 16, camera=SMALL_CAMERA)
    torch.testing.assert_close(
        deformable_aggregation(features, shape.int(), start.int(), location, weights),
        deformable_aggregation(features, shape, start, location, weights),
    )
    with pytest.raises(RuntimeError, match="'weights' is on cpu but 'features' is on cuda"):
        deformable_aggregation(features, shape, start, location, weights.cpu())
    with pytest.raises(RuntimeError, match="'spatial_shape' is on cpu"):
        deformable_aggregation(features, shape.cpu(), start, location, weights)


class ToyAggregationBlock(nn.Module):
    """Predicts weights from the anchor features, then aggregates: the model's DFA shape."""

    def __init__(self, cams, levels, points=13, groups=8, channels=256):
        super().__init__()
        self.shape = (points, cams, levels, groups)
        self.weights = nn.Linear(channels, points * cams * levels * groups)
        self.aggregate = MultiScaleDeformableAggregation()

    def forward(self, instance_feature, features, spatial_shape, scale_start_index, location):
        batch, anchors, _ = instance_feature.shape
        weights = self.weights(instance_feature).reshape(batch, anchors, -1, self.shape[-1])
        weights = weights.softmax(dim=2).reshape(batch, anchors, *self.shape)
        return self.aggregate(features, spatial_shape, scale_start_index, location, weights)


def block_and_inputs(dtype=torch.float32, seed=0):
    features, shape, start, location, _ = cuda_inputs(1, 6, 900, dtype=dtype, seed=seed)
    torch.manual_seed(seed)
    block = ToyAggregationBlock(cams=6, levels=4).cuda().to(dtype)
    instance = torch.randn(1, 900, 256, device='cuda', dtype=dtype)
    return block, (instance, features, shape, start, location)


@pytest.fixture
def tf32_matmuls():
    """TF32 matmuls, as training runs them (and inductor warns without them)."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision('high')
    yield
    torch.set_float32_matmul_precision(previous)


def test_module_under_torch_compile(tf32_matmuls):
    block, inputs = block_and_inputs()
    compiled = torch.compile(block, fullgraph=True)
    torch.testing.assert_close(compiled(*inputs), block(*inputs), rtol=2e-3, atol=2e-3)
    inputs[0].requires_grad_(True)
    compiled(*inputs).sum().backward()
    assert inputs[0].grad is not None and block.weights.weight.grad is not None


def test_module_inside_a_captured_cuda_graph():
    block, inputs = block_and_inputs(torch.float16)
    static_inputs = [t.clone() for t in inputs]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):  # warm-up outside the capture
            block(*static_inputs)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        static_output = block(*static_inputs)
    for seed in (1, 2):
        fresh = block_and_inputs(torch.float16, seed=seed)[1]
        for static, new in zip(static_inputs, fresh, strict=True):
            static.copy_(new)
        graph.replay()
        with torch.no_grad():
            expected = block(*fresh)
        assert not torch.equal(fresh[1], inputs[1])
        torch.testing.assert_close(static_output, expected, rtol=0, atol=0)


@pytest.mark.parametrize('mode', MSDA_FEATURE_GRADIENTS)
def test_the_backward_is_captured_in_a_cuda_graph_without_host_waits(mode):
    # The feature gradient's lists are sized for the worst case and summed on the device,
    # so forward and backward capture once and replay on fresh inputs.
    def step(inputs, grad_output):
        leaves = [inputs[0], inputs[3], inputs[4]]
        return torch.autograd.grad(deformable_aggregation(*inputs), leaves, grad_output)

    def fresh(seed):
        inputs = list(cuda_inputs(2, 3, 64, points=6, camera=SMALL_CAMERA, seed=seed))
        for index in (0, 3, 4):
            inputs[index].requires_grad_(True)
        grad_output = torch.randn(2, 64, 256, device='cuda', generator=None)
        return inputs, grad_output

    with msda_feature_gradient_mode(mode):
        static_inputs, static_grad_output = fresh(0)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                step(static_inputs, static_grad_output)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_grads = step(static_inputs, static_grad_output)
        for seed in (1, 2):
            inputs, grad_output = fresh(seed)
            with torch.no_grad():
                for static, new in zip(static_inputs, inputs, strict=True):
                    static.copy_(new)
                static_grad_output.copy_(grad_output)
            graph.replay()
            for grad, expected in zip(static_grads, step(inputs, grad_output), strict=True):
                # Atomic sums may add in another order: fp32 summation error only.
                torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_views_at_odd_offsets_give_the_same_results(dtype):
    """A compiled graph can pass views that start at an odd offset of their buffer, which
    the kernels cannot load as vectors: the op aligns them first, same values either way."""
    inputs = list(cuda_inputs(2, 3, 64, dtype=dtype, camera=SMALL_CAMERA))
    features = inputs[0]
    offset = torch.empty(features.numel() + 1, dtype=dtype, device='cuda')
    shifted = offset[1:].view_as(features)
    shifted.copy_(features)
    assert shifted.data_ptr() % 16 != 0 and features.data_ptr() % 16 == 0
    grad = torch.randn(2, 64, features.shape[-1], dtype=dtype, device='cuda')
    grad_buffer = torch.empty(grad.numel() + 1, dtype=dtype, device='cuda')
    shifted_grad = grad_buffer[1:].view_as(grad)
    shifted_grad.copy_(grad)
    results = []
    for feats, grad_output in ((features, grad), (shifted, shifted_grad)):
        feats = feats.detach().requires_grad_()
        weights = inputs[4].detach().requires_grad_()
        output = deformable_aggregation(feats, inputs[1], inputs[2], inputs[3], weights)
        output.backward(grad_output)
        results.append((output, feats.grad, weights.grad))
    # The gradients sum through atomics, whose order varies from run to run.
    tolerance = TOLERANCE[dtype]
    for aligned, shifted_result in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(shifted_result, aligned, rtol=tolerance, atol=tolerance)
