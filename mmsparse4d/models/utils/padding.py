"""Padding per-sample ground truth into batch tensors."""

import torch
from torch import Tensor


def pad_sequence(tensors: list[Tensor], fill, device) -> Tensor:
    """Per-sample [M_b, ...] tensors -> [B, max(1, max M_b), ...] on ``device``, padded with
    ``fill``. At least one column, so that gathers work when no sample has ground truth
    (callers mask the padding)."""
    most = max(1, max(len(t) for t in tensors))
    out = torch.full((len(tensors), most, *tensors[0].shape[1:]), fill,
                     dtype=tensors[0].dtype, device=device)  # fmt: skip
    for index, tensor in enumerate(tensors):
        out[index, : len(tensor)] = tensor.to(device)
    return out
