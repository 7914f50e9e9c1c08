"""The instance bank across frames: propagation, decay, ids, and starting afresh."""

import numpy as np
import pytest
import torch

from mmsparse4d.models.layers import InstanceBank
from mmsparse4d.structures import VX
from mmsparse4d.testing.capture_safety import capture_hazards

A, T, C = 10, 4, 8


def make_bank(**kwargs):
    anchors = np.zeros((12, 11), dtype=np.float32)
    anchors[:, 0] = np.arange(12)
    anchors[:, 7] = 1.0
    return InstanceBank(num_anchor=A, embed_dims=C, anchor=anchors, num_temp_instances=T, **kwargs)


def logits_with(best):
    """Class logits [1, A, 2] where the queries in ``best`` are confident."""
    cls = torch.full((1, A, 2), -4.0)
    for rank, query in enumerate(best):
        cls[0, query, 0] = 4.0 - rank
    return cls


def run_frame(bank, time, scene='s', cls=None, velocity=0.0):
    out = bank.get(1, torch.tensor([time], dtype=torch.float64), [scene])
    anchor = out['anchor'].clone()
    anchor[..., VX] = velocity
    feature = out['instance_feature'] + torch.arange(A, dtype=torch.float32)[None, :, None]
    cls = logits_with([7, 2, 5, 9]) if cls is None else cls
    if out['cached_feature'] is not None:
        feature, anchor = bank.merge_cache(
            feature, anchor, cls, out['cached_feature'], out['cached_anchor'], out['temp_valid']
        )
    bank.cache(feature, anchor, cls)
    return out, bank.get_instance_id(cls, threshold=0.5), feature, anchor


def test_first_frame_has_no_cache_and_ids_start_at_zero():
    bank = make_bank()
    out, ids, _, _ = run_frame(bank, 0.0)
    assert out['cached_feature'] is None and not out['temp_valid'].any()
    assert out['anchor'].shape == (1, A, 11) and out['time_interval'].item() == pytest.approx(
        1 / 30
    )
    assert sorted(ids[0][ids[0] >= 0].tolist()) == [0, 1, 2, 3]  # the four confident queries


def test_cache_is_propagated_and_ids_persist():
    bank = make_bank()
    _, ids0, _, anchor0 = run_frame(bank, 0.0, velocity=2.0)
    out, ids1, _, _ = run_frame(bank, 0.5, velocity=2.0)
    assert out['temp_valid'].all() and out['time_interval'].item() == pytest.approx(0.5)
    # Slot k of the cache holds the k-th most confident query of the previous frame, moved
    # forward by its velocity x 0.5 s.
    kept = [7, 2, 5, 9]
    torch.testing.assert_close(out['cached_anchor'][0, :, 0], anchor0[0, kept, 0] + 1.0)
    # Those instances sit in slots 0..3 now and keep their ids; the current frame's queries
    # 7, 2, 5, 9 are new detections and take fresh ids.
    assert ids1[0, :T].tolist() == [ids0[0, q].item() for q in kept]


def test_confidence_decays_for_carried_instances():
    bank = make_bank(confidence_decay=0.5)
    run_frame(bank, 0.0)
    weak = torch.full((1, A, 2), -4.0)  # nothing confident in the second frame
    run_frame(bank, 0.1, cls=weak)
    expected = torch.maximum(
        torch.sigmoid(torch.tensor([4.0, 3.0, 2.0, 1.0])) * 0.5, torch.sigmoid(torch.tensor(-4.0))
    )
    torch.testing.assert_close(bank.confidence[0], expected)


@pytest.mark.parametrize(
    'time, scene',
    [(5.0, 's'), (0.0, 's'), (-0.2, 's'), (0.2, 'other')],
    ids=['gap', 'same-time', 'backwards', 'new-scene'],
)
def test_breaks_start_afresh(time, scene):
    bank = make_bank()
    _, ids0, _, _ = run_frame(bank, 0.0)
    out, ids1, feature, _ = run_frame(bank, time, scene)
    assert out['cached_feature'] is None and not out['temp_valid'].any()
    assert out['time_interval'].item() == pytest.approx(1 / 30)
    # No carried instance: the layout is the fresh queries and every track is new.
    torch.testing.assert_close(feature[0, :, 0], torch.arange(A, dtype=torch.float32))
    assert set(ids1[0][ids1[0] >= 0].tolist()).isdisjoint(ids0[0][ids0[0] >= 0].tolist())


def test_update_layout_and_denoising_tail():
    bank = make_bank()
    run_frame(bank, 0.0)
    out = bank.get(1, torch.tensor([0.1], dtype=torch.float64), ['s'])
    dn = 3
    feature = torch.cat([out['instance_feature'], torch.full((1, dn, C), 99.0)], dim=1)
    anchor = torch.cat([out['anchor'], torch.zeros(1, dn, 11)], dim=1)
    cls = torch.cat([logits_with([1, 3, 6, 8, 0, 4]), torch.zeros(1, dn, 2)], dim=1)
    merged_feature, merged_anchor = bank.merge_cache(
        feature, anchor, cls, out['cached_feature'], out['cached_anchor'], out['temp_valid']
    )
    assert merged_feature.shape == (1, A + dn, C)
    torch.testing.assert_close(merged_feature[:, :T], out['cached_feature'])
    torch.testing.assert_close(merged_anchor[0, T:A, 0], torch.tensor([1.0, 3, 6, 8, 0, 4]))
    assert (merged_feature[:, A:] == 99).all()


def test_anchor_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.npy: InstanceBank: anchor file not found'):
        InstanceBank(
            num_anchor=4, embed_dims=8, anchor=str(tmp_path / 'missing.npy'), num_temp_instances=2
        )
    np.save(tmp_path / 'small.npy', np.zeros((3, 11), np.float32))
    with pytest.raises(ValueError, match='small.npy must be \\[>= 4, 11\\], got \\(3, 11\\)'):
        InstanceBank(
            num_anchor=4, embed_dims=8, anchor=str(tmp_path / 'small.npy'), num_temp_instances=2
        )
    with pytest.raises(ValueError, match='num_temp_instances must be in'):
        InstanceBank(num_anchor=4, embed_dims=8, anchor=np.zeros((4, 11)), num_temp_instances=4)


def test_cache_follows_a_changing_frame_rotation():
    """Training rotates every frame's scene differently (GlobalRotation3D); the cache must
    be moved from the previous frame's rotation to this one's."""
    bank = make_bank()

    def rotation(angle):
        out = torch.eye(4)
        out[0, 0], out[0, 1], out[1, 0], out[1, 1] = (
            np.cos(angle),
            -np.sin(angle),
            np.sin(angle),
            np.cos(angle),
        )
        return out[None]

    bank.get(1, torch.tensor([0.0], dtype=torch.float64), ['s'], world_to_frame=rotation(0.3))
    anchor = bank.anchor[None].detach().clone()
    bank.cache(torch.zeros(1, A, C), anchor, logits_with([7, 2, 5, 9]))
    cached = bank.cached_anchor.clone()
    out = bank.get(
        1,
        torch.tensor([1 / 30], dtype=torch.float64),
        ['s'],
        world_to_frame=rotation(0.3 + np.pi / 2),
    )
    moved = out['cached_anchor']
    # A quarter turn: (x, y) -> (-y, x); yaw 0 -> pi/2, i.e. (sin, cos) = (1, 0).
    torch.testing.assert_close(moved[..., 0], -cached[..., 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(moved[..., 1], cached[..., 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(moved[..., 6], torch.ones_like(moved[..., 6]), atol=1e-5, rtol=0)
    torch.testing.assert_close(moved[..., 7], torch.zeros_like(moved[..., 7]), atol=1e-5, rtol=0)


def test_a_tracking_frame_of_the_bank_never_waits_for_the_device():
    # get, update, cache and ids run on the host's timestamps and the device's counter, so
    # a pipelined loop can queue the next frame before this one's results are read. Host
    # data moving to the device (the validity and intervals) is allowed: it does not wait.
    bank = make_bank()
    run_frame(bank, 0.0)
    run_frame(bank, 0.1)
    hazards = capture_hazards(run_frame, bank, 0.2)
    assert [h for h in hazards if 'host data' not in h] == []
    # The device counter numbers this frame's new queries in order, after the earlier ones.
    before = bank.next_id
    _, ids, _, _ = run_frame(bank, 0.3)
    new = ids[ids >= before]
    assert int(bank.first_new_id) == before and len(new) > 0
    assert new.tolist() == list(range(before, bank.next_id))


def test_tao_temporal_validity_keeps_the_stale_cache_attended():
    # NVIDIA TAO's rule (a compatibility setting): valid when |gap| <= max_time_interval,
    # whatever the scene; an invalid sample still gets its cache, moved by the whole gap,
    # and still decays it, but its tracks end.
    bank = make_bank(temporal_validity='tao')
    _, first_ids, *_ = run_frame(bank, 10.0, velocity=1.0)
    out, ids, *_ = run_frame(bank, 10.0 - 1 / 30, scene='other', velocity=1.0)
    assert bool(out['temp_valid'][0])  # back in time, another scene: still valid
    assert torch.equal(ids[0, :2], first_ids[0, [7, 2]])  # tracks carried
    before, cached = bank.confidence.clone(), bank.cached_anchor.clone()
    out, ids, *_ = run_frame(bank, 13.0, cls=torch.full((1, A, 2), -9.0), velocity=1.0)
    assert not bool(out['temp_valid'][0])
    assert out['cached_feature'] is not None  # attended although stale
    gap = 13.0 - (10.0 - 1 / 30)
    torch.testing.assert_close(out['cached_anchor'][..., 0], cached[..., 0] + gap)
    assert out['time_interval'].item() == pytest.approx(1 / 30)
    torch.testing.assert_close(bank.confidence, before * 0.8)  # decayed all the same
    assert (ids < 0).all()  # no track survives the gap, none starts below the threshold
    with pytest.raises(ValueError, match="temporal_validity must be one of .* got 'loose'"):
        make_bank(temporal_validity='loose')


def merged_queries(bank, best):
    """The current queries (by their x, which is their index) that join the cache in the
    second frame, when the first frame cached queries 7, 2, 5, 9 and ``best`` rank first now."""
    run_frame(bank, 0.0)
    out = bank.get(1, torch.tensor([0.1], dtype=torch.float64), ['s'])
    _, anchor = bank.merge_cache(
        out['instance_feature'],
        out['anchor'],
        logits_with(best),
        out['cached_feature'],
        out['cached_anchor'],
        out['temp_valid'],
        cached_confidence=bank.confidence,
    )
    return anchor[0, T:, 0].long().tolist()


def test_new_query_exclusion_ranks_queries_on_tracked_objects_last():
    # Cached: the queries at x = 7, 2, 5, 9 (unit footprints), confidences 0.98-0.73.
    best = [7, 1, 3, 6, 0, 4]
    assert merged_queries(make_bank(), best) == best  # upstream: the best current queries
    # Within half a footprint of a confident carried instance: 7 (and 2, 5, 9) rank last;
    # the next best uncovered query (8, logit -4) takes the sixth slot.
    exclusive = make_bank(new_query_exclusion=dict(radius=0.5, min_confidence=0.5))
    assert merged_queries(exclusive, best) == [1, 3, 6, 0, 4, 8]
    # Carried instances below min_confidence cover nothing.
    unsure = make_bank(new_query_exclusion=dict(radius=0.5, min_confidence=0.99))
    assert merged_queries(unsure, best) == best
    # Covered queries still fill the slots, best first, when too few others are left.
    everywhere = make_bank(new_query_exclusion=dict(radius=100.0, min_confidence=0.5))
    assert merged_queries(everywhere, best) == best


def test_new_query_exclusion_scales_with_the_carried_footprint():
    bank = make_bank(new_query_exclusion=dict(radius=0.5, min_confidence=0.5))
    anchor = torch.zeros(1, 3, 11)
    anchor[0, :, 0] = torch.tensor([0.9, 1.9, float('nan')])  # 0.9 m and 1.9 m from x = 0
    cached = torch.zeros(1, 1, 11)
    cached[0, 0, 3:5] = torch.tensor([4.0, 1.0]).log()  # w 4 m, l 1 m: footprint 2 m
    covered = bank.covered_by_tracks(anchor, cached, torch.tensor([[0.9]]))
    assert covered.tolist() == [[True, False, False]]


def test_new_query_exclusion_settings_are_checked():
    with pytest.raises(ValueError, match='new_query_exclusion must be None or dict'):
        make_bank(new_query_exclusion=dict(radius=1.0))
    with pytest.raises(ValueError, match='needs radius > 0 and min_confidence in'):
        make_bank(new_query_exclusion=dict(radius=0.0, min_confidence=0.2))
    bank = make_bank(new_query_exclusion=dict(radius=1.0, min_confidence=0.2))
    run_frame(bank, 0.0)
    out = bank.get(1, torch.tensor([0.1], dtype=torch.float64), ['s'])
    with pytest.raises(ValueError, match='needs the carried confidences'):
        bank.merge_cache(
            out['instance_feature'],
            out['anchor'],
            logits_with([1]),
            out['cached_feature'],
            out['cached_anchor'],
            out['temp_valid'],
        )
