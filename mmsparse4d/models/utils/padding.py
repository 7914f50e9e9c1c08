"""Padding per-sample ground truth into batch tensors."""

import numpy as np
import torch
from torch import Tensor

from .host_transfer import to_device


def pad_sequence(tensors: list[Tensor], fill, device, min_length: int = 1) -> Tensor:
    """Per-sample [M_b, ...] tensors -> [B, max(min_length, max M_b), ...] on ``device``,
    padded with ``fill``. At least one column, so that gathers work when no sample has
    ground truth (callers mask the padding).

    A fixed number of ops whatever the batch size (one scatter of all rows, its index built
    on the host from the lengths): the training step pads the ground truth several times per
    decoder layer, and a copy per sample made the host's per-op overhead grow with the batch.
    """
    lengths = [len(t) for t in tensors]
    most = max(min_length, 1, max(lengths))
    out = torch.full(
        (len(tensors), most, *tensors[0].shape[1:]), fill, dtype=tensors[0].dtype, device=device
    )
    if sum(lengths):
        # Row r of sample b lands at b * most + r of the flattened output.
        starts = np.repeat(np.arange(len(tensors)) * most, lengths)
        within = np.arange(sum(lengths)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        index = to_device(starts + within, out.device)
        # As the first sample's dtype; the same device (a check in Python: no op per sample).
        rows = torch.cat(
            [
                t
                if t.dtype == out.dtype and t.device == tensors[0].device
                else t.to(tensors[0].device, out.dtype)
                for t in tensors
            ]
        )
        rows = to_device(rows, out.device)
        out.view(-1, *out.shape[2:]).index_copy_(0, index, rows)
    return out
