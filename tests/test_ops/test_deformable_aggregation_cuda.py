"""The CUDA kernels against the float64 reference (run on the GPU machines: -m gpu)."""

import math

import pytest
import torch
from torch import nn

from mmsparse4d.ops import (
    MultiScaleDeformableAggregation,
    camera_level_shapes,
    deformable_aggregation,
    deformable_aggregation_reference,
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
    [(24, 3), (40, 8), (6, 2), (512, 8), (96, 1)],
    ids=['c24g3', 'c40g8', 'c6g2', 'c512g8', 'c96g1'],
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


def test_forward_is_deterministic():
    inputs = cuda_inputs(1, 10, 900, dtype=torch.float16)
    assert torch.equal(deformable_aggregation(*inputs), deformable_aggregation(*inputs))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16], ids=str)
def test_gradients_match_float64_reference(dtype):
    inputs = cuda_inputs(2, 3, 64, points=6, dtype=dtype, camera=SMALL_CAMERA, seed=3)
    differentiable = [inputs[0], inputs[3], inputs[4]]
    for tensor in differentiable:
        tensor.requires_grad_(True)
    grad_output = torch.randn(2, 64, 256, device='cuda', dtype=torch.float64)
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
    # Location gradients scale with the map size and sum 256 channels: relative tolerance.
    for name, grad, reference in zip(
        ('features', 'location', 'weights'), grads, expected, strict=True
    ):
        assert grad.dtype == dtype and torch.isfinite(grad).all(), name
        scale = reference.abs().max().item()
        tolerance = TOLERANCE[dtype] * 10 * max(scale, 1.0)
        torch.testing.assert_close(grad.double(), reference, rtol=0, atol=tolerance, msg=name)


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
