"""Track stitching: reported ids follow objects when the query carrying them changes."""

import numpy as np
import pytest
import torch

from mmsparse4d.models.task_modules import SparseBox3DDecoder, TrackStitcher
from mmsparse4d.structures import encode_box
from mmsparse4d.structures.track_ids import FIRST_TRACK_ID


def boxes_at(*centres):
    """Decoded boxes [M, 10] at BEV ``centres``."""
    return torch.tensor([[x, y, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0] for x, y in centres])


def test_a_new_query_near_a_lost_track_takes_its_id():
    stitcher = TrackStitcher(radius=1.0, max_age=3, min_score=0.2)
    scores = torch.tensor([0.5, 0.5])
    # Frame 1: two objects, queries 10 and 11 -> tracks 0 and 1.
    first = stitcher(0, boxes_at((0, 0), (5, 0)), scores, torch.tensor([10, 11]), restart=True)
    assert first.tolist() == [0, 1]
    # Frame 2: query 10 keeps its object; query 11 is replaced by query 42 nearby.
    second = stitcher(0, boxes_at((0.1, 0), (5.3, 0)), scores, torch.tensor([10, 42]), False)
    assert second.tolist() == [0, 1]
    # Frame 3: query 42 stays with track 1 (a takeover is for good); a new object far away
    # starts track 2; a box below min_score gets no track.
    third = stitcher(
        0,
        boxes_at((0.2, 0), (5.5, 0), (20, 0), (0.2, 0.1)),
        torch.tensor([0.5, 0.5, 0.5, 0.1]),
        torch.tensor([10, 42, 43, 44]),
        False,
    )
    assert third.tolist() == [0, 1, 2, -1]


def test_radius_age_and_restart():
    stitcher = TrackStitcher(radius=1.0, max_age=2, min_score=0.2)
    score = torch.tensor([0.5])
    assert stitcher(0, boxes_at((0, 0)), score, torch.tensor([1]), True).tolist() == [0]
    # Too far from track 0: a new track.
    assert stitcher(0, boxes_at((3, 0)), score, torch.tensor([2]), False).tolist() == [1]
    # Track 0 unseen for 2 frames may still be taken over; after max_age it is forgotten.
    assert stitcher(0, boxes_at((9, 9)), score, torch.tensor([3]), False).tolist() == [2]
    assert stitcher(0, boxes_at((0, 0.5)), score, torch.tensor([4]), False).tolist() == [3]
    # A restart forgets the sample's tracks; numbers are never reused.
    assert stitcher(0, boxes_at((0, 0.5)), score, torch.tensor([4]), True).tolist() == [4]


def test_samples_are_independent_and_two_boxes_never_share_a_track():
    stitcher = TrackStitcher(radius=1.0, max_age=3, min_score=0.2)
    scores = torch.tensor([0.6, 0.5])
    assert stitcher(0, boxes_at((0, 0)), scores[:1], torch.tensor([1]), True).tolist() == [0]
    assert stitcher(1, boxes_at((0, 0)), scores[:1], torch.tensor([1]), True).tolist() == [1]
    # Two new queries next to track 0: the closer one takes it, the other starts a track.
    ids = stitcher(0, boxes_at((0.5, 0), (0.1, 0)), scores, torch.tensor([7, 8]), False)
    assert ids.tolist() == [2, 0]


def test_bad_settings():
    with pytest.raises(ValueError, match='radius'):
        TrackStitcher(radius=0.0)


def test_decoder_stitches_and_resets():
    decoder = SparseBox3DDecoder(num_output=2, track_stitching=dict(radius=1.0))
    cls = torch.tensor([[0.6, 0.5]]).logit()[..., None]

    def frame(x, ids, restart):
        anchors = encode_box(torch.tensor([[[x, 0, 0.5, 1, 1, 1, 0.0], [9, 9, 0.5, 1, 1, 1, 0]]]))
        (result,) = decoder.decode(
            cls, anchors, instance_ids=torch.tensor([ids]), restart=torch.tensor([restart])
        )
        return sorted((result['track_ids'] - FIRST_TRACK_ID).tolist())

    assert frame(0.0, [5, 6], True) == [0, 1]
    assert frame(0.2, [7, 6], False) == [0, 1]  # query 7 takes over track 0
    decoder.reset()
    assert frame(0.2, [7, 6], False) == [0, 1]  # numbering restarts, as the bank's ids do


def test_a_weaker_box_continues_its_querys_track_but_starts_none():
    stitcher = TrackStitcher(radius=1.0, max_age=3, min_score=0.2, continue_score=0.1)
    first = stitcher(
        0, boxes_at((0, 0), (5, 0)), torch.tensor([0.5, 0.5]), torch.tensor([10, 11]), True
    )
    assert first.tolist() == [0, 1]
    # Query 10 dips to 0.15: it keeps track 0. Query 12 at 0.15 next to the unclaimed
    # track 1 neither takes it over nor starts a track; query 13 below 0.1 is not tracked.
    second = stitcher(
        0,
        boxes_at((0.1, 0), (5.1, 0), (9, 9)),
        torch.tensor([0.15, 0.15, 0.05]),
        torch.tensor([10, 12, 13]),
        False,
    )
    assert second.tolist() == [0, -1, -1]
    # A stronger box of another query takes track 0 over first: the weak one reports nothing.
    third = stitcher(
        0, boxes_at((0.2, 0), (0.3, 0)), torch.tensor([0.15, 0.5]), torch.tensor([10, 14]), False
    )
    assert third.tolist() == [-1, 0]


def test_reported_boxes_with_and_without_continuation():
    scores = np.array([0.5, 0.15, 0.15, 0.3])
    track_ids = np.array([3, 4, FIRST_TRACK_ID - 1, 5])  # as the decoder reports them
    plain = TrackStitcher(min_score=0.2)
    assert plain.reported(scores, track_ids, 0.2).tolist() == [True, False, False, True]
    continuing = TrackStitcher(min_score=0.2, continue_score=0.1)
    assert continuing.reported(scores, track_ids, 0.2).tolist() == [True, True, False, True]
    # A raised threshold still drops tracked boxes between min_score and it.
    assert continuing.reported(scores, track_ids, 0.4).tolist() == [True, True, False, False]


@pytest.mark.parametrize('continue_score', [0.2, 0.3, -0.1])
def test_continue_score_must_lie_below_min_score(continue_score):
    with pytest.raises(ValueError, match='continue_score'):
        TrackStitcher(min_score=0.2, continue_score=continue_score)
