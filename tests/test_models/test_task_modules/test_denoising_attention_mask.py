"""The denoising queries' attention mask: groups, and no sample sees its batch's padding."""

import torch

from mmsparse4d.models.layers import DecoupledMultiheadAttention
from mmsparse4d.models.task_modules import SparseBox3DTarget, denoising_attention_mask
from mmsparse4d.structures import encode_box
from mmsparse4d.testing import rounding_tolerance


def boxes(count, seed):
    generator = torch.Generator().manual_seed(seed)
    centre = torch.rand(count, 3, generator=generator) * 10
    size = torch.rand(count, 3, generator=generator) + 0.5
    raw = torch.cat([centre, size, torch.rand(count, 1, generator=generator)], dim=1)
    return encode_box(raw), torch.arange(count) % 3


def test_padding_rows_are_keys_for_themselves_only():
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=2)
    (a0, l0), (a1, l1) = boxes(3, 0), boxes(1, 1)
    dn = target.get_dn_anchors([l0, l1], [a0, a1], generator=torch.Generator().manual_seed(0))
    mask = denoising_attention_mask(4, dn)  # 4 queries, then 2 groups x (3 + 3) rows
    assert mask.shape == (2, 16, 16)
    # Sample 0 has no padding: the shared group structure.
    group = torch.arange(12) // 6
    expected = torch.ones(16, 16, dtype=torch.bool)
    expected[:4, :4] = False
    expected[4:, 4:] = group[:, None] != group[None]
    assert torch.equal(mask[0], expected)
    # Sample 1 holds 1 box: slots 1 and 2 of both copies in both groups are padding.
    padding = 4 + torch.tensor([1, 2, 4, 5, 7, 8, 10, 11])
    real = 4 + torch.tensor([0, 3, 6, 9])
    sees = ~mask[1]  # True: attends
    assert torch.equal(sees[:, padding], torch.eye(16, dtype=torch.bool)[:, padding])
    assert torch.equal(mask[1][:, real], expected[:, real])
    # A real row without a loss (a carried copy whose object left) stays a key.
    assert torch.equal(dn['dn_padding_mask'], ~dn['dn_valid_mask'])
    without_loss = dict(dn, dn_valid_mask=dn['dn_valid_mask'].clone())
    without_loss['dn_valid_mask'][1, 0] = False
    assert torch.equal(denoising_attention_mask(4, without_loss), mask)


def test_min_per_group_widens_the_groups_with_padding_only():
    target = SparseBox3DTarget(num_classes=3, num_dn_groups=2)
    anchors, labels = boxes(3, 0)
    narrow = target.get_dn_anchors([labels], [anchors], generator=torch.Generator().manual_seed(0))
    wide = target.get_dn_anchors(
        [labels], [anchors], generator=torch.Generator().manual_seed(0), min_per_group=10
    )
    assert narrow['dn_anchor'].shape[1] == 2 * 6 and wide['dn_anchor'].shape[1] == 2 * 10
    # Rows 0-2 are the positive copies of the 3 boxes, 5-7 the negative ones; 3-4, 8-9 pad.
    valid = wide['dn_valid_mask'][0].reshape(2, 10)
    assert valid[:, [0, 1, 2, 5, 6, 7]].all() and not valid[:, [3, 4, 8, 9]].any()
    assert torch.equal(
        wide['dn_cls_target'][0].reshape(2, 10)[:, [0, 1, 2, 5, 6, 7]],
        narrow['dn_cls_target'][0].reshape(2, 6),
    )


@torch.no_grad()
def test_a_mask_per_sample_attends_as_the_module_does_with_one_per_head():
    torch.manual_seed(0)
    attention = DecoupledMultiheadAttention(embed_dims=16, num_heads=4, dropout=0.0).eval()
    attention.init_weights()
    query, query_pos = torch.randn(2, 9, 16), torch.randn(2, 9, 16)
    blocked = torch.rand(2, 9, 9) < 0.4
    blocked &= ~torch.eye(9, dtype=torch.bool)  # every row keeps a key
    out = attention(query, query_pos, attn_mask=blocked)
    # nn.MultiheadAttention's own form of a per-sample mask: repeated for every head.
    wide_query = torch.cat([query, query_pos], -1)
    reference, _ = attention.attention(
        wide_query,
        wide_query,
        attention.fc_before(query),
        attn_mask=blocked.repeat_interleave(4, 0),
        need_weights=False,
    )
    expected = attention.fc_after(wide_query + reference)
    tolerance = rounding_tolerance(torch.float32, 32, depth=4, scale=float(expected.abs().max()))
    torch.testing.assert_close(out, expected, **tolerance)
    # A shared [Q, K] mask keeps the module's own path.
    shared = attention(query, query_pos, attn_mask=blocked[0])
    per_sample = attention(query, query_pos, attn_mask=blocked[0].expand(2, 9, 9))
    torch.testing.assert_close(per_sample, shared, **tolerance)
