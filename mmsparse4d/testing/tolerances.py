"""Float tolerances from a rounding-error model, not from one machine's kernels.

Two computations of the same mathematics in floating point differ only by rounding when
they sum in another order: a batch padded with a camera and the sample alone, a compiled
op and its reference, and the same code on two CPUs. PyTorch takes other kernels per CPU:
ATen's own loops for ``ATEN_CPU_CAPABILITY`` default (scalar), AVX2 (8 float lanes) or
AVX-512 (16 lanes), MKL and oneDNN their own blocking per instruction set, vendor and
matrix shape, with or without fused multiply-add. Each keeps partial sums of its own and
adds them in its own order, so a tolerance measured on one machine says nothing about the
next one. What does hold on every machine is the error bound of a sum as such.

The model (N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002,
ch. 3-4; N. J. Higham and T. Mary, *A New Approach to Probabilistic Rounding Error
Analysis*, SIAM J. Sci. Comput. 41(5), 2019). With the unit roundoff ``u = eps / 2`` of the
dtype (``torch.finfo(dtype).eps``), a sum or dot product of ``n`` terms ``x_i`` computed in
**any** order (sequential, pairwise, SIMD lanes added at the end, blocked GEMM with any
split of the reduction) and with or without FMA satisfies

* worst case: ``|computed - exact| <= gamma_n * sum|x_i|``, ``gamma_n = n u / (1 - n u)``;
* with rounding errors that are independent and of mean zero, as they are in practice:
  ``|computed - exact| <= lambda * sqrt(n) * u * sum|x_i|`` (to first order), failing
  with a probability of about ``2 n exp(-lambda^2 / 2)``.

Neither bound depends on the order of the additions or on the hardware, only on ``n`` and
the dtype, so two kernels (or two machines) differ by at most twice the bound. With
``lambda = SIGMAS = 8`` a failure by chance has a probability near ``1e-14 * n`` per
compared value: a test that fails points at a bug, not at the CPU.

A chain of ``depth`` such reductions (the layers between an input and an output) whose
stages do not amplify a perturbation (linear layers of initialised networks, LayerNorm,
softmax-weighted and bilinear averages) gathers the roundings of all stages: it is counted
as one reduction of ``terms * depth`` roundings. ``scale`` is the magnitude of the summed
terms (``sum|x_i|`` of the last reduction, or the magnitude of the compared values where
the network keeps them in a known range, e.g. box coordinates in metres): values that
cancelled to near zero keep the absolute error of their terms.

Not covered: algorithms other than reordered sums (a Winograd or FFT convolution, an
approximate ``exp``), flushed denormals, and discrete decisions (a top-k or threshold that
a rounding difference flips): such comparisons need their own reasoning.
"""

import math

import torch
from torch import nn

# Standard deviations of the probabilistic bound (lambda above).
SIGMAS = 8.0


def rounding_tolerance(
    dtype: torch.dtype,
    terms: int = 1,
    *,
    depth: int = 1,
    scale: float = 1.0,
    worst_case: bool = False,
) -> dict[str, float]:
    """``atol`` and ``rtol`` for comparing two computations of the same values that differ
    in rounding only (summation order, FMA, another CPU's kernels).

    Args:
        dtype: the dtype the reductions round to (float32 for a float32 model).
        terms: terms per reduction: the length of the longest dot product or sum (the
            input channels times the kernel size of a convolution, the features of a
            linear layer, the samples an aggregation adds up).
        depth: reductions chained between the inputs and the compared values.
        scale: magnitude of the summed terms (``sum|x_i|``) or of the compared values.
        worst_case: the bound for any rounding errors (``gamma``, linear in ``terms *
            depth``) instead of the probabilistic one (square root). For sums whose
            errors may all have one sign (adding many equal values).

    Returns:
        dict: ``atol`` (the bound at ``scale``) and ``rtol`` (the relative bound, for
        values larger than ``scale``), to pass as ``assert_close(a, b, **tolerance)``;
        ``assert_close`` allows ``atol + rtol * |expected|``.
    """
    if terms < 1 or depth < 1 or not scale > 0:
        raise ValueError(
            f'rounding_tolerance: terms ({terms}) and depth ({depth}) must be >= 1 and scale '
            f'({scale}) > 0'
        )
    unit_roundoff = torch.finfo(dtype).eps / 2
    roundings = terms * depth
    if worst_case:
        if roundings * unit_roundoff >= 1:
            raise ValueError(
                f'rounding_tolerance: {roundings} roundings in {dtype} bound nothing (n * u >= 1)'
            )
        one_side = roundings * unit_roundoff / (1 - roundings * unit_roundoff)
    else:
        one_side = SIGMAS * math.sqrt(roundings) * unit_roundoff
    relative = 2 * one_side  # both computations may err, in opposite directions
    return {'atol': relative * scale, 'rtol': relative}


def network_reductions(model: nn.Module) -> tuple[int, int]:
    """``(terms, depth)`` of a network for :func:`rounding_tolerance`, read from its layers.

    ``terms`` is the longest reduction of its convolutions (input channels per group times
    the kernel size), linear layers (input features), LayerNorm and GroupNorm (normalised
    elements) and attention (embedding size). ``depth`` counts those layers as if all were
    chained (an attention as three reductions: the projection, the scores and the weighted
    sum of the values), so parallel branches (heads, an auxiliary depth branch) make it an
    overestimate, never an underestimate, of the deepest path. Reductions outside modules
    (a softmax, a custom op) are not seen: a caller whose longest reduction is one of those
    passes its own ``terms``.
    """
    terms, depth = 1, 0
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            size = module.in_channels // module.groups * math.prod(module.kernel_size)
            count = 1
        elif isinstance(module, nn.Linear):
            size, count = module.in_features, 1
        elif isinstance(module, nn.LayerNorm):
            size, count = math.prod(module.normalized_shape), 1
        elif isinstance(module, nn.GroupNorm):
            size, count = module.num_channels // module.num_groups, 1
        elif isinstance(module, nn.MultiheadAttention):
            size, count = module.embed_dim, 3
        else:
            continue
        terms, depth = max(terms, size), depth + count
    return terms, max(depth, 1)
