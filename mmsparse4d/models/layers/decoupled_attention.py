"""Multi-head attention over instances with the anchor embedding decoupled from the feature."""

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class DecoupledMultiheadAttention(BaseModule):
    """Sparse4D v3's decoupled attention.

    Queries and keys are ``cat(feature, anchor_embed)`` ([.., 2C]) instead of their sum, so
    position and content are matched separately; values are ``fc_before(feature)`` (C -> 2C).
    The 2C output plus the 2C query (the residual) goes through ``fc_after`` (2C -> C).

    Args:
        embed_dims: C, the instance feature width.
        num_heads: heads of the 2C-wide attention.
        dropout: on the attention weights and on the attention output.
    """

    def __init__(self, embed_dims=256, num_heads=8, dropout=0.1, init_cfg=None):
        super().__init__(init_cfg)
        wide = 2 * embed_dims
        self.fc_before = nn.Linear(embed_dims, wide, bias=False)
        self.attention = nn.MultiheadAttention(wide, num_heads, dropout=dropout, batch_first=True)
        self.proj_drop = nn.Dropout(dropout)
        self.fc_after = nn.Linear(wide, embed_dims, bias=False)

    def init_weights(self) -> None:
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
        nn.init.zeros_(self.attention.in_proj_bias)
        nn.init.zeros_(self.attention.out_proj.bias)

    def forward(
        self,
        query: Tensor,
        query_pos: Tensor,
        key: Tensor | None = None,
        key_pos: Tensor | None = None,
        attn_mask: Tensor | None = None,
        value_is_query: bool = False,
    ) -> Tensor:
        """
        Args:
            query, query_pos: [B, Q, C] features and anchor embeddings.
            key, key_pos: [B, K, C]; self-attention when None.
            attn_mask: [Q, K] bool, True where attention is blocked; [B, Q, K] for a mask
                per sample (the denoising queries' padding differs between samples).
            value_is_query: in self-attention, the values are the 2C query itself instead of
                ``fc_before(query)``: what upstream Sparse4D's and NVIDIA TAO's temporal
                attention does on a frame without a cache (a compatibility setting, see
                ``Sparse4DHead``'s ``first_frame_temporal_value``).

        Returns:
            Tensor: [B, Q, C].
        """
        wide_query = torch.cat([query, query_pos], dim=-1)
        if key is None:
            wide_key = wide_query
            value = wide_query if value_is_query else self.fc_before(query)
        else:
            wide_key, value = torch.cat([key, key_pos], dim=-1), self.fc_before(key)
        if attn_mask is not None and attn_mask.dim() == 3:
            out = self._attend_per_sample(wide_query, wide_key, value, attn_mask)
        else:
            out, _ = self.attention(
                wide_query, wide_key, value, attn_mask=attn_mask, need_weights=False
            )
        return self.fc_after(wide_query + self.proj_drop(out))

    def _attend_per_sample(self, query: Tensor, key: Tensor, value: Tensor, blocked: Tensor):
        """``self.attention`` (its weights, heads and dropout) with a mask per sample
        ``blocked`` [B, Q, K] (True: no attention), broadcast over the heads. The module
        itself takes such a mask only repeated per head, [B * heads, Q, K], which it turns
        into floats: a gigabyte at 900 anchors and 1280 denoising queries."""
        attention = self.attention
        heads = attention.num_heads
        w_q, w_k, w_v = attention.in_proj_weight.chunk(3)
        b_q, b_k, b_v = attention.in_proj_bias.chunk(3)

        def split_heads(x: Tensor) -> Tensor:  # [B, L, E] -> [B, heads, L, E / heads]
            return x.unflatten(-1, (heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split_heads(F.linear(query, w_q, b_q)),
            split_heads(F.linear(key, w_k, b_k)),
            split_heads(F.linear(value, w_v, b_v)),
            attn_mask=~blocked[:, None],
            dropout_p=attention.dropout if self.training else 0.0,
        )
        return attention.out_proj(out.transpose(1, 2).flatten(2))
