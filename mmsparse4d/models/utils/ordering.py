"""Deterministic ordering of scores."""

import torch
from torch import Tensor


def stable_topk(values: Tensor, k: int, dim: int = -1) -> tuple[Tensor, Tensor]:
    """The k largest ``values`` along ``dim``, ties broken by position (lower first).

    ``Tensor.topk`` leaves the order of equal values unspecified, so two runtimes (or two
    devices) can rank tied queries differently and hand out different track ids; ONNX's
    TopK, which this exports to, breaks ties by position as well.

    Returns:
        tuple: values and indices, k along ``dim``.
    """
    if torch.onnx.is_in_onnx_export():
        # ONNX TopK ranks equal values by position already; the exporter lacks stable sort.
        return values.topk(k, dim=dim)
    ordered, index = values.sort(dim=dim, descending=True, stable=True)
    return ordered.narrow(dim, 0, k), index.narrow(dim, 0, k)
