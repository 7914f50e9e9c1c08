"""How precise the MSDA's half-precision feature gradient is, summed in fp32 or in its own
format: the choice behind bf16's default (``set_msda_feature_gradient``).

The backward adds one contribution per (anchor, point, camera, level, bilinear corner,
channel) into the feature gradient, in parallel, with atomic additions. Summed in an fp32
buffer and rounded to bf16 once at the end (bf16's default), a pixel's gradient carries one
bf16 rounding. Summed in bf16 itself (fp16's default; bf16's with the setting off), each
contribution is rounded to bf16 and every addition rounds the running sum, so a pixel that
gathers many contributions (the coarse levels') loses the small ones to the large sum.

This emulates both on the CPU, exactly as the kernel rounds (round-to-nearest-even per
contribution and per addition, additions in a random order as the atomics' is), against
the sum in float64, and prints per level the relative L2 error of the gradient and how
many contributions a pixel gathers:

    python tools/analysis_tools/msda_sum_precision.py [--cams 6] [--size 480 272]
        [--anchors 900] [--points 13] [--channels 16] [--spread uniform|0.05] [--seed 0]

``--spread uniform``: sampling locations uniformly random, 44% of them inside the image
(the operator benchmark's). A number: each anchor's points lie within that fraction of the
image around a random centre, as a box's key points do, so that pixels gather more.
Channels are independent here; a few stand for the model's 256.
"""

import argparse

import torch
from torch import Tensor

from mmsparse4d.ops import camera_level_shapes, random_deformable_aggregation_inputs
from mmsparse4d.utils.input_error import InputError, run_tool


def contributions(
    location: Tensor, weights: Tensor, spatial_shape: Tensor, start: Tensor, grad_output: Tensor
):
    """Every (pixel, level, value [C]) the backward adds into the feature gradient of one
    sample: location [A, P, N, 2], weights [A, P, N, L, G], spatial_shape [N, L, 2],
    start [N, L], grad_output [A, C], float64."""
    anchors, points, cams = location.shape[:3]
    levels, groups = weights.shape[3:]
    channels = grad_output.shape[1]
    pixel, level_of, value = [], [], []
    x, y = location[..., 0], location[..., 1]
    inside = (x > 0) & (x < 1) & (y > 0) & (y < 1)
    for level in range(levels):
        h = spatial_shape[:, level, 0].double()[None, None, :]
        w = spatial_shape[:, level, 1].double()[None, None, :]
        h_im, w_im = y * h - 0.5, x * w - 0.5
        h0, w0 = h_im.floor(), w_im.floor()
        lh, lw = h_im - h0, w_im - w0
        corners = (
            (h0, w0, (1 - lh) * (1 - lw)),
            (h0, w0 + 1, (1 - lh) * lw),
            (h0 + 1, w0, lh * (1 - lw)),
            (h0 + 1, w0 + 1, lh * lw),
        )
        group_weight = weights[:, :, :, level].repeat_interleave(channels // groups, dim=-1)
        for hc, wc, bilinear in corners:
            ok = inside & (hc >= 0) & (hc < h) & (wc >= 0) & (wc < w)
            index = start[:, level][None, None, :] + (hc * w + wc).long()
            coef = group_weight * bilinear[..., None]  # [A, P, N, C]
            contribution = coef * grad_output[:, None, None, :]
            pixel.append(index[ok])
            value.append(contribution[ok])
            level_of.append(torch.full((int(ok.sum()),), level))
    return torch.cat(pixel), torch.cat(level_of), torch.cat(value)


def sum_in_bf16(pixel: Tensor, value: Tensor, pixels: int, generator) -> Tensor:
    """Sequential bf16 sums per pixel in a random order: each contribution rounded to bf16,
    each addition rounded (the kernel's ``red.global.add.bf16x2``)."""
    order = torch.randperm(len(pixel), generator=generator)
    pixel, value = pixel[order], value[order].to(torch.bfloat16).float()
    # The rank of each contribution among its pixel's, in the random order.
    sort = torch.sort(pixel, stable=True)
    pixel, value = sort.values, value[sort.indices]
    first = torch.searchsorted(pixel, pixel, right=False)
    rank = torch.arange(len(pixel)) - first
    total = torch.zeros(pixels, value.shape[1], dtype=torch.bfloat16)
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        chosen = rank == k
        where = pixel[chosen]
        total[where] = (total[where].float() + value[chosen]).to(torch.bfloat16)
    return total.double()


def relative_error(got: Tensor, exact: Tensor) -> float:
    return float((got - exact).norm() / exact.norm().clamp(min=1e-300))


def precision_rows(args) -> list[dict]:
    generator = torch.Generator().manual_seed(args.seed)
    shapes = [camera_level_shapes((args.size[1], args.size[0]))] * args.cams
    features, spatial_shape, start, location, weights = random_deformable_aggregation_inputs(
        1,
        shapes,
        args.anchors,
        args.points,
        8,
        args.channels,
        torch.float64,
        inside_fraction=0.44,
        generator=generator,
    )
    location, weights = location[0], weights[0]
    if args.spread != 'uniform':
        spread = float(args.spread)
        centre = torch.rand(args.anchors, 1, args.cams, 2, generator=generator, dtype=torch.float64)
        offset = torch.rand(location.shape, generator=generator, dtype=torch.float64) - 0.5
        location = centre + offset * spread
    grad_output = torch.randn(args.anchors, args.channels, generator=generator, dtype=torch.float64)
    # The incoming gradient is bf16 already in a bf16 backward.
    grad_output = grad_output.to(torch.bfloat16).double()
    pixel, level_of, value = contributions(location, weights, spatial_shape, start, grad_output)
    pixels = features.shape[1]
    exact = torch.zeros(pixels, args.channels, dtype=torch.float64).index_add_(0, pixel, value)
    in_fp32 = torch.zeros(pixels, args.channels).index_add_(0, pixel, value.float())
    fp32_then_bf16 = in_fp32.to(torch.bfloat16).double()
    in_bf16 = sum_in_bf16(pixel, value, pixels, generator)
    rows = []
    levels = spatial_shape.shape[1]
    per_pixel = torch.bincount(pixel, minlength=pixels)
    for level in range(levels):
        mask = torch.zeros(pixels, dtype=torch.bool)
        for cam in range(args.cams):
            begin = int(start[cam, level])
            mask[begin : begin + int(spatial_shape[cam, level].prod())] = True
        touched = mask & (per_pixel > 0)
        rows.append(
            {
                'level': level,
                'shape': tuple(int(v) for v in spatial_shape[0, level]),
                'mean': float(per_pixel[touched].float().mean()) if touched.any() else 0.0,
                'max': int(per_pixel[mask].max()),
                'fp32': relative_error(fp32_then_bf16[mask], exact[mask]),
                'bf16': relative_error(in_bf16[mask], exact[mask]),
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument('--size', type=int, nargs=2, default=(480, 272), help='W H')
    parser.add_argument('--anchors', type=int, default=900)
    parser.add_argument('--points', type=int, default=13)
    parser.add_argument('--channels', type=int, default=16, help='a multiple of 8 (groups)')
    parser.add_argument('--spread', default='uniform')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.cams, args.anchors, args.points, *args.size) < 1:
        raise InputError('--cams, --anchors, --points and --size must be >= 1')
    if args.channels < 8 or args.channels % 8:
        raise InputError(f'--channels must be a positive multiple of 8, got {args.channels}')
    if args.spread != 'uniform':
        try:
            spread = float(args.spread)
        except ValueError:
            spread = -1.0
        if not 0 < spread <= 1:
            raise InputError(f"--spread must be 'uniform' or a number in (0, 1], got {args.spread}")
    rows = precision_rows(args)
    print(
        f'MSDA feature gradient, {args.cams} cameras at {args.size[0]}x{args.size[1]}, '
        f'{args.anchors} anchors x {args.points} points, locations {args.spread}: relative '
        'L2 error against float64'
    )
    print(
        '| level | H x W | contributions per pixel: mean (touched) | max '
        '| fp32 sums, one bf16 rounding | bf16 sums |'
    )
    print('|---:|---|---:|---:|---:|---:|')
    for row in rows:
        print(
            f'| {row["level"]} | {row["shape"][0]} x {row["shape"][1]} | {row["mean"]:.1f} | '
            f'{row["max"]} | {row["fp32"]:.2e} | {row["bf16"]:.2e} |'
        )


if __name__ == '__main__':
    run_tool('msda_sum_precision', main)
