"""Sparse4DTracker.track on the CUDA-graph back end: one frame per call, optionally decoded
one call late (CPU, no capture)."""

import pytest
import torch

from mmsparse4d.apis import Sparse4DTracker
from mmsparse4d.testing import build_untrained_model, random_batch

DECODER = {
    'model.head.decoder.duplicate_radius': 0.5,
    'model.head.decoder.track_stitching': dict(radius=1.0, max_age=15, min_score=0.2),
}


def _frames(count, scene='a', start=0):
    for f in range(start, start + count):
        inputs = random_batch(1, 2, (256, 144), boxes=1, seed=f, frame=f)['inputs']
        yield (
            inputs['img'][0][None],
            inputs['projection_mat'][0][None].float(),
            inputs['image_wh'][0][None].float(),
            torch.tensor([f / 30], dtype=torch.float64),
            scene,
            f,
        )


def _track(tracker, frames):
    results = []
    for frame in frames:
        results += tracker.track(*frame)
    return results + tracker.flush()


def test_pipelined_results_come_one_call_late_and_equal_the_sequential_ones():
    torch.manual_seed(0)
    model = build_untrained_model(cfg_options=DECODER).eval()
    sequential = _track(Sparse4DTracker.from_model(model, capture=False), _frames(4))
    pipelined = Sparse4DTracker.from_model(model, pipelined=True, capture=False)
    pipelined.reset()
    frames = list(_frames(4))
    assert pipelined.track(*frames[0]) == []  # nothing decoded yet
    ((tag, first),) = pipelined.track(*frames[1])
    assert tag == 0
    rest = [r for frame in frames[2:] for r in pipelined.track(*frame)] + pipelined.flush()
    got = [(0, first), *rest]
    assert [t for t, _ in got] == [t for t, _ in sequential] == [0, 1, 2, 3]
    assert any(len(result['track_ids']) for _, result in sequential)
    for (_, a), (_, b) in zip(sequential, got, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(b[name], a[name], msg=name)
    assert pipelined.flush() == []  # nothing left
    assert pipelined.last_decode_ms > 0  # the host's decoding is timed


def test_reset_decodes_the_waiting_frame_and_restarts_the_ids():
    torch.manual_seed(0)
    model = build_untrained_model(cfg_options=DECODER).eval()
    tracker = Sparse4DTracker.from_model(model, pipelined=True, capture=False)
    tracker.reset()
    frames = list(_frames(3))
    for frame in frames[:2]:
        tracker.track(*frame)
    ((tag, _),) = tracker.reset()
    assert tag == 1 and tracker.flush() == []
    assert tracker.bank.next_id == 0  # ids start again after the reset


def test_bad_compile_mode_is_named():
    with pytest.raises(ValueError, match='compile_mode'):
        Sparse4DTracker.from_model(
            build_untrained_model().eval(), capture=False, compile_mode='fast'
        )
