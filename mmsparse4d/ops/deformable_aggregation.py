"""The multi-scale deformable aggregation (MSDA) operator, backed by the compiled extension.

``deformable_aggregation`` calls ``torch.ops.mmsparse4d.deformable_aggregation``: a real
torch.library operator with CPU (and, when built, CUDA) kernels, a fake kernel for
``torch.compile`` and CUDA graphs, and autograd for features, sampling locations and
weights. The contract (shapes, conventions) is in ``ops/csrc/deformable_aggregation.h``
and DESIGN.md §5; the oracle is ``deformable_aggregation_reference``.
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mmengine.logging import print_log
from torch import Tensor

from .extension import ExtensionNotBuiltError, load_extension

OP_NAME = 'mmsparse4d::deformable_aggregation'
BACKWARD_OP_NAME = 'mmsparse4d::deformable_aggregation_backward'


def _fake_forward(features, spatial_shape, scale_start_index, sampling_location, weights):
    batch, anchors = sampling_location.shape[:2]
    return features.new_empty((batch, anchors, features.shape[2]))


# How the CUDA backward sums the feature gradient, by name; the operator's integer codes
# (FeatureGradient in ops/csrc/deformable_aggregation.h) in this order. None: per dtype and
# channel count (default_msda_feature_gradient).
MSDA_FEATURE_GRADIENTS = ('by_destination', 'atomic_float32', 'atomic_own_format')
_FEATURE_GRADIENT: str | None = None


def set_msda_feature_gradient(mode: str | None) -> None:
    """Choose how the CUDA backward sums the feature gradient.

    ``'atomic_float32'``: every contribution added with atomics into an fp32 (fp64 for
    fp64 inputs) buffer, cleared first and cast once at the end.
    ``'atomic_own_format'``: for fp16 and bf16, atomics in the input's own format, as
    torch's own half ``grid_sample`` backward does: no buffer to clear and cast, but each
    addition rounds to the format, so a pixel with k contributions carries up to about k
    half-ulps of error; other dtypes as ``'atomic_float32'``.
    ``'by_destination'``: every pixel's contributions listed (one integer atomic per
    bilinear corner), cut into pieces, summed in registers in fp32 (fp64) and written once
    in the input's dtype: no buffer to clear or cast and one rounding, but more passes
    (docs/performance.md measures when it pays).
    ``None`` (the default): :func:`default_msda_feature_gradient` of the features' dtype
    and channel count.

    Location and weight gradients are always summed in fp32 (fp64); the CPU kernel always
    sums per pixel in fp32 (fp64). The setting is process-wide and read when a backward
    runs; a model compiled with ``torch.compile`` or captured in a CUDA graph keeps the
    value its backward was traced or captured with, so set it before the first step.
    """
    global _FEATURE_GRADIENT
    if mode is not None and mode not in MSDA_FEATURE_GRADIENTS:
        raise ValueError(
            f'set_msda_feature_gradient: mode must be one of {", ".join(MSDA_FEATURE_GRADIENTS)}'
            f' (or None), got {mode!r}'
        )
    _FEATURE_GRADIENT = mode


def msda_feature_gradient() -> str | None:
    """The setting of :func:`set_msda_feature_gradient` (None: per dtype and channels)."""
    return _FEATURE_GRADIENT


def default_msda_feature_gradient(dtype: torch.dtype, channels: int, groups: int) -> str:
    """The way the CUDA backward sums the feature gradient when none is set.

    fp16 (11 significant bits) sums in its own format: the fastest, at an error that
    training does not see. bf16 (8 bits) keeps fp32 sums: by destination where each lane
    of a warp holds 4 or 8 of the C channels in one pass (C = 128 or 256, as the 960x544
    configs' 256, and a group's channels a multiple of a lane's, as the kernel's vectors
    need), where it takes 0.48-0.65 of the time of the atomics into an fp32 buffer (and
    less than fp32 inputs); with atomics otherwise (the small configs' C = 96, where the
    lists cost 1.5 times the atomics, a lane holding 4 of the channels in one pass: 1.67
    against 1.09 ms at batch 16 on an H100; bf16's own-format sums there trained worse in
    the one comparison run, docs/performance.md#bf16-sums-in-training). fp32 and fp64 with
    atomics. docs/performance.md#msda-operator has the measurements.

    Args:
        dtype: the features' dtype.
        channels: C, the features' last dimension.
        groups: G, the weights' last dimension (the channels of a group share a weight).
    """
    if dtype == torch.float16:
        return 'atomic_own_format'
    if (
        dtype == torch.bfloat16
        and channels in (128, 256)
        and (channels // groups) % (channels // 32) == 0
    ):
        return 'by_destination'
    return 'atomic_float32'


@functools.cache  # once per (dtype, C, G, mode) and process
def _tell_default(dtype: torch.dtype, channels: int, groups: int, mode: str) -> None:
    print_log(
        f'deformable_aggregation: the CUDA backward sums the {str(dtype).split(".")[-1]} '
        f'feature gradient (C = {channels}, G = {groups}) {mode}, the default '
        '(--msda-feature-gradient or set_msda_feature_gradient to choose)',
        'current',
    )


def _feature_gradient_code(features: Tensor, weights: Tensor) -> int:
    mode = _FEATURE_GRADIENT
    if mode is None:
        channels, groups = features.shape[-1], weights.shape[-1]
        mode = default_msda_feature_gradient(features.dtype, channels, groups)
        if features.is_cuda:
            _tell_default(features.dtype, channels, groups, mode)
    return MSDA_FEATURE_GRADIENTS.index(mode)


@contextmanager
def msda_feature_gradient_mode(mode: str | None) -> Iterator[None]:
    """:func:`set_msda_feature_gradient` inside the block, the previous setting restored
    after it."""
    previous = _FEATURE_GRADIENT
    set_msda_feature_gradient(mode)
    try:
        yield
    finally:
        set_msda_feature_gradient(previous)


def _fake_backward(
    grad_output,
    features,
    spatial_shape,
    scale_start_index,
    sampling_location,
    weights,
    feature_gradient=0,
):
    return (
        torch.empty_like(features),
        torch.empty_like(sampling_location),
        torch.empty_like(weights),
    )


def _setup_context(ctx, inputs, output):
    features, spatial_shape, scale_start_index, sampling_location, weights = inputs
    ctx.save_for_backward(features, spatial_shape, scale_start_index, sampling_location, weights)


def _backward(ctx, grad_output):
    features, spatial_shape, scale_start_index, sampling_location, weights = ctx.saved_tensors
    grad_features, grad_location, grad_weights = (
        torch.ops.mmsparse4d.deformable_aggregation_backward(
            grad_output.contiguous(),
            features,
            spatial_shape,
            scale_start_index,
            sampling_location,
            weights,
            _feature_gradient_code(features, weights),
        )
    )
    return (
        grad_features if ctx.needs_input_grad[0] else None,
        None,
        None,
        grad_location if ctx.needs_input_grad[3] else None,
        grad_weights if ctx.needs_input_grad[4] else None,
    )


def _register_python_parts() -> ExtensionNotBuiltError | None:
    """Import the extension and attach the fake kernels and autograd to its operators.

    Returns the import error instead of raising it, so that this module (and the
    reference implementation next to it) imports where the extension is not built; the
    error is raised by the first call of :func:`deformable_aggregation`.
    """
    try:
        load_extension()
    except ExtensionNotBuiltError as error:
        return error
    torch.library.register_fake(OP_NAME)(_fake_forward)
    torch.library.register_fake(BACKWARD_OP_NAME)(_fake_backward)
    torch.library.register_autograd(OP_NAME, _backward, setup_context=_setup_context)
    return None


_EXTENSION_ERROR = _register_python_parts()


def deformable_aggregation(
    features: Tensor,
    spatial_shape: Tensor,
    scale_start_index: Tensor,
    sampling_location: Tensor,
    weights: Tensor,
) -> Tensor:
    """Weighted sum of bilinear samples over points, cameras and levels, per anchor.

    Args:
        features (Tensor): [B, F, C] every camera's feature levels packed channel-last,
            camera-major then level then row-major pixel.
        spatial_shape (Tensor): [N, L, 2] int32/int64 (H, W) of each camera's level.
        scale_start_index (Tensor): [N, L] int32/int64 first row in F of each block.
        sampling_location (Tensor): [B, A, P, N, 2] normalised (x, y): x along the width,
            y along the height, pixel-centre convention. A location not strictly inside
            (0, 1) on both axes, NaN included, contributes nothing.
        weights (Tensor): [B, A, P, N, L, G]; channel c uses group c // (C / G).

    Returns:
        Tensor: [B, A, C] in the dtype of ``features``.

    Every tensor must be contiguous and on one device; floating inputs share one dtype.
    Violations raise a ``RuntimeError`` naming the argument.
    """
    if _EXTENSION_ERROR is not None:
        raise _EXTENSION_ERROR
    return torch.ops.mmsparse4d.deformable_aggregation(
        features, spatial_shape, scale_start_index, sampling_location, weights
    )
