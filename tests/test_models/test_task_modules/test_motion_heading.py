"""Yaw from motion: a tracked box turns to the direction its track has moved."""

import math

import pytest
import torch

from mmsparse4d.models.task_modules import MotionHeading, SparseBox3DDecoder
from mmsparse4d.structures import YAW, encode_box


def boxes_at(*centres, yaw=0.25):
    """Decoded boxes [M, 10] at BEV ``centres``, all with the network's ``yaw``."""
    return torch.tensor([[x, y, 0.5, 1.0, 0.5, 1.0, yaw, 0.0, 0.0, 0.0] for x, y in centres])


def test_a_track_that_moved_far_enough_faces_its_direction_of_travel():
    heading = MotionHeading(window=5, min_distance=0.25, min_points=3)
    direction = math.radians(120.0)
    step = 0.1  # metres per frame
    yaws = []
    for frame in range(8):
        x, y = frame * step * math.cos(direction), frame * step * math.sin(direction)
        # Track 7 moves; track 3 stands still (its noise must not give it a heading).
        out = heading(
            0, boxes_at((x, y), (5.0, 0.01 * (frame % 2))), torch.tensor([7, 3]), restart=frame == 0
        )
        yaws.append(out[:, YAW].tolist())
    # Frames 1-2: too few points; frame 3: 3 points spanning 0.2 m < 0.25 m; from frame 4
    # on the fitted line covers 0.3-0.4 m (the window keeps the last 5 frames).
    assert [row[0] for row in yaws[:3]] == pytest.approx([0.25] * 3)
    assert [row[0] for row in yaws[3:]] == pytest.approx([direction] * 5, abs=1e-5)
    assert [row[1] for row in yaws] == pytest.approx([0.25] * 8)


def test_a_heading_window_follows_a_turn_the_whole_window_lags_behind():
    """A track that went +x for 10 frames, then +y for 4: the line over all 14 frames
    points between the two; the last 4 frames' line points along +y. Whether it moves is
    still decided over the whole window."""
    path = [(0.1 * f, 0.0) for f in range(10)] + [(0.9, 0.1 * f) for f in range(1, 5)]
    whole = MotionHeading(window=14, min_distance=0.3)
    recent = MotionHeading(window=14, min_distance=0.3, heading_window=4)
    for frame, centre in enumerate(path):
        lagging = whole(0, boxes_at(centre), torch.tensor([1]), restart=frame == 0)
        turned = recent(0, boxes_at(centre), torch.tensor([1]), restart=frame == 0)
    assert 0.0 < lagging[0, YAW].item() < math.pi / 4
    assert turned[0, YAW].item() == pytest.approx(math.pi / 2, abs=1e-5)
    # Standing still over the whole window: no heading, whatever the last frames did.
    still = MotionHeading(window=14, min_distance=0.3, heading_window=4)
    for frame in range(14):
        jitter = 0.02 * (frame % 2)
        out = still(0, boxes_at((jitter, 0.0)), torch.tensor([1]), restart=frame == 0)
    assert out[0, YAW].item() == pytest.approx(0.25)
    # heading_window == window is the whole window's line.
    same = MotionHeading(window=14, min_distance=0.3, heading_window=14)
    for frame, centre in enumerate(path):
        out = same(0, boxes_at(centre), torch.tensor([1]), restart=frame == 0)
    assert out[0, YAW].item() == pytest.approx(lagging[0, YAW].item(), abs=1e-6)


def test_untracked_boxes_inputs_and_other_columns_are_left_alone():
    heading = MotionHeading(window=4, min_distance=0.1)
    for frame in range(4):
        boxes = boxes_at((0.2 * frame, 0.0), (0.2 * frame, 3.0))
        boxes[:, 7] = 1.5
        out = heading(0, boxes, torch.tensor([0, -1]), restart=False)
    assert out[0, YAW].item() == pytest.approx(0.0, abs=1e-6)  # moving along +x
    assert out[1, YAW].item() == pytest.approx(0.25)  # no track: network yaw
    assert boxes[0, YAW].item() == pytest.approx(0.25)  # the input is not modified
    torch.testing.assert_close(out[:, :YAW], boxes[:, :YAW])
    torch.testing.assert_close(out[:, YAW + 1 :], boxes[:, YAW + 1 :])


def test_restart_window_and_samples():
    heading = MotionHeading(window=3, min_distance=0.1)
    for frame in range(3):
        out = heading(0, boxes_at((0.0, 0.2 * frame)), torch.tensor([1]), restart=False)
    assert out[0, YAW].item() == pytest.approx(math.pi / 2, abs=1e-6)
    # Another sample has its own tracks: the same id there has no history yet.
    assert heading(1, boxes_at((9.0, 9.0)), torch.tensor([1]), False)[0, YAW] == pytest.approx(0.25)
    # A restart forgets sample 0's history.
    out = heading(0, boxes_at((0.0, 0.6)), torch.tensor([1]), restart=True)
    assert out[0, YAW].item() == pytest.approx(0.25)
    # A track unseen for longer than the window is forgotten: only its new centres count.
    heading(0, boxes_at((0.0, 0.8)), torch.tensor([1]), False)
    for _ in range(3):
        heading(0, boxes_at((7.0, 7.0)), torch.tensor([2]), False)
    assert 1 not in heading.samples[0].history
    heading.reset()
    assert heading.samples == {}


def test_bad_settings_and_inputs():
    with pytest.raises(ValueError, match='min_points'):
        MotionHeading(window=1)
    with pytest.raises(ValueError, match='min_distance'):
        MotionHeading(min_distance=0.0)
    with pytest.raises(ValueError, match='heading_window=2'):
        MotionHeading(window=20, min_points=3, heading_window=2)
    with pytest.raises(ValueError, match='heading_window=21'):
        MotionHeading(window=20, heading_window=21)
    with pytest.raises(ValueError, match='3 track ids'):
        MotionHeading()(0, boxes_at((0, 0)), torch.tensor([1, 2, 3]), False)


def test_decoder_turns_moving_tracks_and_needs_ids():
    decoder = SparseBox3DDecoder(
        num_output=2, track_stitching=dict(radius=1.0), motion_heading=dict(window=4)
    )
    logits = torch.tensor([[[3.0], [-5.0]]])
    ids = torch.tensor([[5, 6]])
    for frame in range(4):
        boxes = boxes_at((0.0, -0.3 * frame), (4.0, 4.0))
        results = decoder.decode(
            logits, encode_box(boxes)[None], instance_ids=ids, restart=torch.tensor([frame == 0])
        )
    assert results[0]['bboxes_3d'][0, YAW].item() == pytest.approx(-math.pi / 2, abs=1e-5)
    # The low-scoring box has no reported track: its yaw stays the network's.
    assert results[0]['bboxes_3d'][1, YAW].item() == pytest.approx(0.25, abs=1e-6)
    decoder.reset()
    assert decoder.motion_heading.samples == {}
    with pytest.raises(ValueError, match='motion_heading needs track ids'):
        decoder.decode(logits, encode_box(boxes)[None])
