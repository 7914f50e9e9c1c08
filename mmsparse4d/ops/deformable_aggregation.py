"""The multi-scale deformable aggregation (MSDA) operator, backed by the compiled extension.

``deformable_aggregation`` calls ``torch.ops.mmsparse4d.deformable_aggregation``: a real
torch.library operator with CPU (and, when built, CUDA) kernels, a fake kernel for
``torch.compile`` and CUDA graphs, and autograd for features, sampling locations and
weights. The contract (shapes, conventions) is in ``ops/csrc/deformable_aggregation.h``
and DESIGN.md §5; the oracle is ``deformable_aggregation_reference``.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from .extension import ExtensionNotBuiltError, load_extension

OP_NAME = 'mmsparse4d::deformable_aggregation'
BACKWARD_OP_NAME = 'mmsparse4d::deformable_aggregation_backward'


def _fake_forward(features, spatial_shape, scale_start_index, sampling_location, weights):
    batch, anchors = sampling_location.shape[:2]
    return features.new_empty((batch, anchors, features.shape[2]))


# How the CUDA backward sums fp16/bf16 feature gradients: True (fp32), False (the input's
# own format) or None (per dtype; see set_msda_float32_gradient_accumulation).
_FLOAT32_GRADIENT_ACCUMULATION: bool | None = None


def set_msda_float32_gradient_accumulation(enabled: bool | None) -> None:
    """Choose how the CUDA backward sums the feature gradient of fp16/bf16 inputs.

    ``True`` sums it in an fp32 buffer and rounds once. ``False`` sums it in the input's
    own format, as torch's own half ``grid_sample`` backward does: no fp32 copy of the
    feature maps to clear, fill and cast (that copy makes the half backward slower than
    fp32's), but every contribution rounds when added, so a pixel that receives k
    contributions carries up to about k half-ulps of error, and once its sum is
    2^(significand bits) times a contribution, that contribution is lost. ``None`` (the
    default) sums fp16 (11 significant bits) in its own format and bf16 (8) in fp32.

    Location and weight gradients are always summed in fp32; the CPU kernel always sums in
    fp32. The setting is process-wide and read when a backward runs; a model compiled with
    ``torch.compile`` keeps the value its backward was traced with, so set it before the
    first compiled step.
    """
    global _FLOAT32_GRADIENT_ACCUMULATION
    _FLOAT32_GRADIENT_ACCUMULATION = None if enabled is None else bool(enabled)


def msda_float32_gradient_accumulation() -> bool | None:
    """The setting of :func:`set_msda_float32_gradient_accumulation` (None: per dtype)."""
    return _FLOAT32_GRADIENT_ACCUMULATION


@contextmanager
def msda_gradient_accumulation(enabled: bool | None) -> Iterator[None]:
    """:func:`set_msda_float32_gradient_accumulation` inside the block, the previous setting
    restored after it."""
    previous = _FLOAT32_GRADIENT_ACCUMULATION
    set_msda_float32_gradient_accumulation(enabled)
    try:
        yield
    finally:
        set_msda_float32_gradient_accumulation(previous)


def _sums_in_float32(dtype: torch.dtype) -> bool:
    if _FLOAT32_GRADIENT_ACCUMULATION is None:
        return dtype == torch.bfloat16
    return _FLOAT32_GRADIENT_ACCUMULATION


def _fake_backward(
    grad_output,
    features,
    spatial_shape,
    scale_start_index,
    sampling_location,
    weights,
    float32_accumulation=False,
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
            _sums_in_float32(features.dtype),
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
