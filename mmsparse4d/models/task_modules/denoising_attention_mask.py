"""Which queries a frame's queries may attend to once denoising queries join them."""

import torch
from torch import Tensor


def denoising_attention_mask(num_anchor: int, dn: dict) -> Tensor:
    """The self-attention mask of ``num_anchor`` queries followed by D denoising queries.

    The queries and the denoising groups do not see each other, and each group sees only
    itself (``dn['dn_attn_mask']``). Within a group, the rows a sample holds only because
    another sample of the batch has more boxes (``dn['dn_padding_mask']``) are no key for
    any other row: without this a sample's denoising losses would depend on the rest of its
    batch, and data-parallel training, whose processes pad to their own part's largest box
    count, would not train as one process does. A padding row keeps itself as a key, so
    that no row of the softmax is empty. Real rows without a loss (a carried copy whose
    object has left) stay keys, as upstream has them.

    Args:
        num_anchor: A, the queries before the denoising ones.
        dn: ``dn_attn_mask`` [D, D] bool (True: blocked) and ``dn_padding_mask`` [B, D]
            bool.

    Returns:
        Tensor: [B, A + D, A + D] bool, True where attention is blocked.
    """
    groups, padding_rows = dn['dn_attn_mask'], dn['dn_padding_mask']
    batch, count = padding_rows.shape
    total = num_anchor + count
    device = padding_rows.device
    # Built from blocks, not by assigning Python values: that would copy from the host
    # (this runs between the decoders, where a CUDA graph may hold it).
    apart = torch.ones(num_anchor, count, dtype=torch.bool, device=device)
    shared = torch.cat(
        [
            torch.cat([apart.new_zeros(num_anchor, num_anchor), apart], dim=1),
            torch.cat([apart.t(), groups], dim=1),
        ]
    )
    padding = torch.cat([padding_rows.new_zeros(batch, num_anchor), padding_rows], dim=1)
    others = ~torch.eye(total, dtype=torch.bool, device=device)
    return shared[None] | (padding[:, None, :] & others[None])
