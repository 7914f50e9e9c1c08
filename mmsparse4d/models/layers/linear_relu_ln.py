"""The MLP block Sparse4D uses everywhere: out_loops x (in_loops x [Linear, ReLU], LayerNorm)."""

from torch import nn


def linear_relu_ln(
    embed_dims: int, in_loops: int, out_loops: int, input_dims: int | None = None
) -> nn.Sequential:
    """Args:
    embed_dims: width of every Linear output and LayerNorm.
    in_loops: Linear-ReLU pairs before each LayerNorm.
    out_loops: repetitions of the (pairs, LayerNorm) group.
    input_dims: width of the input (default embed_dims).
    """
    layers = []
    width = embed_dims if input_dims is None else input_dims
    for _ in range(out_loops):
        for _ in range(in_loops):
            # Not in place: a Linear's output of a [B, A, C] input is a view, and an in-place
            # ReLU on a view costs its backward a copy of the whole tensor (CopySlices).
            layers += [nn.Linear(width, embed_dims), nn.ReLU()]
            width = embed_dims
        layers.append(nn.LayerNorm(embed_dims))
    return nn.Sequential(*layers)
