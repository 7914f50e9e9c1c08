"""The decoder keeps every output aligned after the quality re-sort."""

import pytest
import torch

from mmsparse4d.models.task_modules import SparseBox3DDecoder
from mmsparse4d.structures import encode_box
from mmsparse4d.structures.track_ids import FIRST_TRACK_ID


def test_outputs_stay_aligned_after_rescoring():
    generator = torch.Generator().manual_seed(0)
    anchors_count = 40
    boxes = torch.cat(
        [
            torch.randn(1, anchors_count, 3, generator=generator),
            torch.rand(1, anchors_count, 3, generator=generator) + 0.5,
            torch.rand(1, anchors_count, 1, generator=generator),
            torch.zeros(1, anchors_count, 3),
        ],
        dim=-1,
    )
    anchors = encode_box(boxes)
    cls = torch.randn(1, anchors_count, 6, generator=generator)
    quality = torch.randn(1, anchors_count, 2, generator=generator) * 3
    ids = torch.arange(anchors_count)[None] + 100
    feats = torch.arange(anchors_count, dtype=torch.float32)[None, :, None].repeat(1, 1, 4)
    (result,) = SparseBox3DDecoder(num_output=10).decode(cls, anchors, quality, ids, feats)
    assert (result['scores_3d'][:-1] >= result['scores_3d'][1:]).all()
    query = (result['track_ids'] - FIRST_TRACK_ID) - 100  # which query each output row came from
    torch.testing.assert_close(result['instance_feats'][:, 0], query.float())
    torch.testing.assert_close(result['bboxes_3d'], boxes[0, query], atol=1e-5, rtol=0)
    best = cls[0, query].sigmoid().max(dim=-1)
    torch.testing.assert_close(result['cls_scores'], best.values)
    torch.testing.assert_close(result['labels_3d'], best.indices)
    torch.testing.assert_close(result['scores_3d'], best.values * quality[0, query, 0].sigmoid())


def test_threshold_and_no_quality():
    cls = torch.tensor([[[3.0, -3.0], [-3.0, -2.0], [0.5, 0.0]]])
    anchors = encode_box(torch.tensor([[[0, 0, 0, 1, 1, 1, 0.0]] * 3]))
    (result,) = SparseBox3DDecoder(num_output=3, score_threshold=0.5).decode(cls, anchors)
    assert result['labels_3d'].tolist() == [0, 0] and 'track_ids' not in result


def _scene(centres, sizes):
    """Anchors [1, M, 11] for boxes at BEV ``centres`` with footprints ``sizes`` (w, l)."""
    boxes = torch.tensor(
        [
            [x, y, 0.5, width, length, 1.0, 0.0]
            for (x, y), (width, length) in zip(centres, sizes, strict=True)
        ]
    )
    return encode_box(boxes[None])


def test_duplicates_keep_the_oldest_track():
    # Object A (1 x 1 m footprint) has three boxes: ids 7 (old), 12 and 30 (new, best score).
    # Object B, 3 m away, has one box (id 9). A far, low-score box (id -1) stays.
    centres = [(0.0, 0.0), (0.1, 0.0), (0.0, 0.2), (3.0, 0.0), (10.0, 0.0)]
    anchors = _scene(centres, [(1.0, 1.0)] * 5)
    probabilities = torch.tensor([[0.30, 0.32, 0.40, 0.35, 0.05]])
    cls = probabilities.logit()[..., None]
    ids = torch.tensor([[7, 12, 30, 9, -1]])
    decoder = SparseBox3DDecoder(num_output=5, duplicate_radius=0.5, duplicate_min_score=0.2)
    (result,) = decoder.decode(cls, anchors, instance_ids=ids)
    assert sorted((result['track_ids'] - FIRST_TRACK_ID).tolist()) == [-1, 7, 9]
    # Without the suppression every box is reported.
    (plain,) = SparseBox3DDecoder(num_output=5).decode(cls, anchors, instance_ids=ids)
    assert len(plain['track_ids']) == 5


def test_low_scores_never_suppress_and_radius_follows_the_footprint():
    # A low-score old track sits on top of a confident new one: the new one stays, the old
    # one is dropped. Two 4 x 4 m boxes 1.5 m apart are one object at radius 0.5 (2 m); a
    # 0.5 x 0.5 m box 1.5 m from a 4 x 4 m one is another object (0.5 x its 0.5 m).
    centres = [(0.0, 0.0), (0.05, 0.0), (20.0, 0.0), (21.5, 0.0), (18.5, 0.0)]
    sizes = [(0.5, 0.5), (0.5, 0.5), (4.0, 4.0), (4.0, 4.0), (0.5, 0.5)]
    anchors = _scene(centres, sizes)
    cls = torch.tensor([[0.1, 0.6, 0.7, 0.5, 0.5]]).logit()[..., None]
    ids = torch.tensor([[1, 50, 2, 3, 4]])
    decoder = SparseBox3DDecoder(num_output=5, duplicate_radius=0.5, duplicate_min_score=0.2)
    (result,) = decoder.decode(cls, anchors, instance_ids=ids)
    assert sorted((result['track_ids'] - FIRST_TRACK_ID).tolist()) == [2, 4, 50]
    # Without ids (detection), the best score wins.
    (result,) = decoder.decode(cls, anchors)
    assert sorted(result['cls_scores'].tolist()) == pytest.approx([0.5, 0.6, 0.7])


def test_duplicate_radius_must_be_positive():
    with pytest.raises(ValueError, match='duplicate_radius'):
        SparseBox3DDecoder(duplicate_radius=0.0)


def test_ids_born_this_frame_rank_by_score():
    # Two new boxes on one object (ids 3 and 4 given this frame, in slot order): the better
    # one stays; an id carried from an earlier frame (2) would have won over both.
    anchors = _scene([(0.0, 0.0), (0.05, 0.0)], [(1.0, 1.0)] * 2)
    cls = torch.tensor([[0.3, 0.9]]).logit()[..., None]
    decoder = SparseBox3DDecoder(num_output=2, duplicate_radius=0.5, duplicate_min_score=0.2)
    (result,) = decoder.decode(cls, anchors, instance_ids=torch.tensor([[3, 4]]), first_new_id=3)
    assert (result['track_ids'] - FIRST_TRACK_ID).tolist() == [4]
    (result,) = decoder.decode(cls, anchors, instance_ids=torch.tensor([[2, 4]]), first_new_id=3)
    assert (result['track_ids'] - FIRST_TRACK_ID).tolist() == [2]
    # The bank hands its counter over as a 0-dim (device) tensor.
    (result,) = decoder.decode(
        cls, anchors, instance_ids=torch.tensor([[3, 4]]), first_new_id=torch.tensor(3)
    )
    assert (result['track_ids'] - FIRST_TRACK_ID).tolist() == [4]


def test_a_huge_box_does_not_suppress_the_objects_around_it():
    # A carried box that grew to 3000 x 100 m (an old track, confident class) once dropped
    # every box of its frame: the suppression radius is the smaller footprint's.
    centres = [(0.0, 0.0), (2.0, 1.0), (-5.0, 3.0), (2.1, 1.0)]
    anchors = _scene(centres, [(3000.0, 100.0), (0.5, 0.5), (1.0, 2.0), (0.5, 0.5)])
    cls = torch.tensor([[0.3, 0.6, 0.7, 0.5]]).logit()[..., None]
    ids = torch.tensor([[1, 2, 3, 40]])
    decoder = SparseBox3DDecoder(num_output=4, duplicate_radius=0.5, duplicate_min_score=0.2)
    (result,) = decoder.decode(cls, anchors, instance_ids=ids, first_new_id=40)
    # The duplicate next to box 2 (0.1 m, within 0.5 x 0.5 m) still goes.
    assert sorted((result['track_ids'] - FIRST_TRACK_ID).tolist()) == [1, 2, 3]
