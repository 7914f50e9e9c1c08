"""The decoder keeps every output aligned after the quality re-sort."""

import torch

from mmsparse4d.models.task_modules import SparseBox3DDecoder
from mmsparse4d.structures import encode_box


def test_outputs_stay_aligned_after_rescoring():
    generator = torch.Generator().manual_seed(0)
    anchors_count = 40
    boxes = torch.cat([torch.randn(1, anchors_count, 3, generator=generator),
                       torch.rand(1, anchors_count, 3, generator=generator) + 0.5,
                       torch.rand(1, anchors_count, 1, generator=generator),
                       torch.zeros(1, anchors_count, 3)], dim=-1)  # fmt: skip
    anchors = encode_box(boxes)
    cls = torch.randn(1, anchors_count, 6, generator=generator)
    quality = torch.randn(1, anchors_count, 2, generator=generator) * 3
    ids = torch.arange(anchors_count)[None] + 100
    feats = torch.arange(anchors_count, dtype=torch.float32)[None, :, None].repeat(1, 1, 4)
    (result,) = SparseBox3DDecoder(num_output=10).decode(cls, anchors, quality, ids, feats)
    assert (result['scores_3d'][:-1] >= result['scores_3d'][1:]).all()
    query = result['instance_ids'] - 100  # which query each output row came from
    torch.testing.assert_close(result['instance_feats'][:, 0], query.float())
    torch.testing.assert_close(result['boxes_3d'], boxes[0, query], atol=1e-5, rtol=0)
    best = cls[0, query].sigmoid().max(dim=-1)
    torch.testing.assert_close(result['cls_scores'], best.values)
    torch.testing.assert_close(result['labels_3d'], best.indices)
    torch.testing.assert_close(result['scores_3d'], best.values * quality[0, query, 0].sigmoid())


def test_threshold_and_no_quality():
    cls = torch.tensor([[[3.0, -3.0], [-3.0, -2.0], [0.5, 0.0]]])
    anchors = encode_box(torch.tensor([[[0, 0, 0, 1, 1, 1, 0.0]] * 3]))
    (result,) = SparseBox3DDecoder(num_output=3, score_threshold=0.5).decode(cls, anchors)
    assert result['labels_3d'].tolist() == [0, 0] and 'instance_ids' not in result
