"""Offline track smoothing: lines are kept, noise is averaged, tracks never mix."""

import numpy as np
import pytest

from mmsparse4d.evaluation.functional.track_smoothing import (
    local_linear_fit,
    smooth_tracks,
    windowed_axial_mean,
    windowed_median,
)
from mmsparse4d.evaluation.writers.aicity_submission import NUM_FIELDS

# float64 sums of a few hundred terms of size ~10^2: far below a micrometre.
TOLERANCE = 1e-9


def track_rows(scene, object_id, frames, centres, sizes, class_id=0, yaw=0.3):
    """[n, 11] submission rows of one track."""
    rows = np.zeros((len(frames), NUM_FIELDS))
    rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = scene, class_id, object_id, frames
    rows[:, 4:7] = centres
    rows[:, 7:10] = sizes
    rows[:, 10] = yaw
    return rows


def test_a_straight_line_is_kept_exactly_also_across_gaps_and_at_the_ends():
    frames = np.array([0, 1, 2, 5, 6, 7, 8, 20, 21, 40])
    centres = np.stack([3.0 + 0.05 * frames, -2.0 - 0.01 * frames, np.full(10, 0.9)], axis=1)
    fitted = local_linear_fit(frames, centres, half_window=4)
    np.testing.assert_allclose(fitted, centres, atol=TOLERANCE)


def test_the_fit_averages_noise_on_a_standing_object():
    rng = np.random.default_rng(0)
    frames = np.arange(300)
    truth = np.array([12.0, -4.0, 0.8])
    noisy = truth + rng.normal(0, 0.1, (300, 3))
    fitted = local_linear_fit(frames, noisy, half_window=10)
    raw_error = np.linalg.norm(noisy - truth, axis=1).mean()
    fitted_error = np.linalg.norm(fitted - truth, axis=1).mean()
    # 21 rows per window: the noise falls by about sqrt(21) in the middle, less at the ends.
    assert fitted_error < raw_error / 3


def test_the_fit_equals_a_least_squares_line_per_window():
    rng = np.random.default_rng(1)
    frames = np.sort(rng.choice(100, 40, replace=False))
    values = rng.normal(0, 1, (40, 2))
    fitted = local_linear_fit(frames, values, half_window=6)
    for row, frame in enumerate(frames):
        near = np.abs(frames - frame) <= 6
        if near.sum() == 1:
            expected = values[row]
        else:
            design = np.stack([np.ones(near.sum()), frames[near] - frame], axis=1)
            expected = np.linalg.lstsq(design, values[near], rcond=None)[0][0]
        np.testing.assert_allclose(fitted[row], expected, atol=1e-9)


def test_a_lone_row_and_a_zero_window_keep_their_values():
    values = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(local_linear_fit(np.array([7]), values, 5), values)
    more = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(local_linear_fit(np.arange(4), more, 0), more)


def test_the_windowed_median_ignores_a_misjudged_frame():
    sizes = np.tile([0.6, 0.8, 1.7], (9, 1))
    sizes[4] = [3.0, 3.0, 3.0]
    np.testing.assert_array_equal(
        windowed_median(np.arange(9), sizes, None), np.tile(sizes[0], (9, 1))
    )
    np.testing.assert_array_equal(
        windowed_median(np.arange(9), sizes, 2), np.tile(sizes[0], (9, 1))
    )


def test_tracks_are_smoothed_apart_and_rows_keep_their_order_ids_and_yaws():
    rng = np.random.default_rng(2)
    frames = np.arange(50)
    first = track_rows(
        1, 1, frames, [5.0, 5.0, 0.9] + rng.normal(0, 0.05, (50, 3)), [0.6, 0.8, 1.8]
    )
    second = track_rows(
        1, 2, frames, [-5.0, 1.0, 0.5] + rng.normal(0, 0.05, (50, 3)), [1.0, 2.0, 1.0], yaw=1.2
    )
    other_scene = track_rows(2, 1, frames[:10], np.tile([40.0, 0.0, 1.0], (10, 1)), [2, 2, 2])
    # Ids are numbered per scene and class: the same id in another class is another track.
    other_class = track_rows(
        1, 1, frames[:10], np.tile([0.0, -9.0, 1.0], (10, 1)), [3, 3, 3], class_id=4
    )
    rows = np.concatenate([first, second, other_scene, other_class])[rng.permutation(120)]
    smoothed = smooth_tracks(rows, centre_window=5, constant_size=True)
    np.testing.assert_array_equal(smoothed[:, [0, 1, 2, 3, 10]], rows[:, [0, 1, 2, 3, 10]])
    tracks = (
        (1, 0, 1, [5, 5, 0.9]),
        (1, 0, 2, [-5, 1, 0.5]),
        (2, 0, 1, [40, 0, 1]),
        (1, 4, 1, [0, -9, 1]),
    )
    for scene, class_id, object_id, centre in tracks:
        mine = (smoothed[:, 0] == scene) & (smoothed[:, 1] == class_id)
        mine &= smoothed[:, 2] == object_id
        assert np.abs(smoothed[mine, 4:7] - centre).max() < 0.1
        assert len(np.unique(smoothed[mine, 7:10], axis=0)) == 1


def test_no_smoothing_returns_the_rows_and_bad_input_is_refused():
    rows = track_rows(1, 1, np.arange(5), np.zeros((5, 3)), [1, 1, 1])
    np.testing.assert_array_equal(smooth_tracks(rows), rows)
    assert smooth_tracks(np.zeros((0, NUM_FIELDS)), 5, True).shape == (0, NUM_FIELDS)
    with pytest.raises(ValueError, match='windows are frames >= 0'):
        smooth_tracks(rows, centre_window=-1)
    twice = np.concatenate([rows, rows[:1]])
    with pytest.raises(ValueError, match='scene 1, class 0, object 1: two rows in frame 0'):
        smooth_tracks(twice, centre_window=3)


def test_yaws_are_averaged_modulo_pi_and_keep_each_rows_representative():
    frames = np.arange(10)
    # About the pi/2 axis: 1.5 and -1.5 are 0.14 rad apart modulo pi, 3.0 apart as numbers;
    # every window holds five of each.
    alternating = np.where(frames % 2 == 0, 1.5, -1.5)
    averaged = windowed_axial_mean(frames, alternating, 10)
    np.testing.assert_allclose(np.abs(averaged), np.pi / 2, atol=1e-9)
    assert (np.sign(averaged) == np.sign(alternating)).all()  # each row's side kept
    # A box reported turned by pi on one frame is the same box: nothing moves.
    flipped = np.full(7, 0.3)
    flipped[3] += np.pi
    np.testing.assert_allclose(windowed_axial_mean(np.arange(7), flipped, 3), flipped, atol=1e-12)
    # Noise about a standing object's heading averages out; 0 frames keeps the yaws.
    rng = np.random.default_rng(4)
    noisy = 0.3 + rng.normal(0, 0.1, 200)
    smoothed = windowed_axial_mean(np.arange(200), noisy, 20)
    assert np.abs(smoothed - 0.3).std() < np.abs(noisy - 0.3).std() / 3
    np.testing.assert_array_equal(windowed_axial_mean(np.arange(200), noisy, 0), noisy)


def test_the_floor_height_sets_each_centre_at_half_the_final_height():
    frames = np.arange(6)
    sizes = np.tile([0.6, 0.8, 1.8], (6, 1))
    sizes[2, 2] = 2.4  # one misjudged frame; the median height is 1.8
    rows = track_rows(1, 1, frames, np.tile([2.0, 3.0, 1.1], (6, 1)), sizes)
    rows[:, 10] = 0.3 + 0.01 * (frames % 2)
    on_floor = smooth_tracks(rows, constant_size=True, floor_height=0.25)
    np.testing.assert_allclose(on_floor[:, 6], 0.25 + 0.9, atol=TOLERANCE)
    np.testing.assert_array_equal(on_floor[:, [4, 5, 10]], rows[:, [4, 5, 10]])
    # Without size smoothing each row's own height; with yaw_window the yaws are averaged.
    alone = smooth_tracks(rows, floor_height=0.0, yaw_window=5)
    np.testing.assert_allclose(alone[:, 6], rows[:, 9] / 2, atol=TOLERANCE)
    np.testing.assert_allclose(alone[:, 10], 0.305, atol=1e-4)
    with pytest.raises(ValueError, match='yaw_window=-1'):
        smooth_tracks(rows, yaw_window=-1)
    with pytest.raises(ValueError, match='floor_height'):
        smooth_tracks(rows, floor_height=float('nan'))
