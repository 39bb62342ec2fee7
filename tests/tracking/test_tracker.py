"""Tracker behaviour: identities through crossings, fast targets, births, deaths, low scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistd.structures import Detections
from mistd.tracking import Tracker, TrackerConfig


def box(cx: float, cy: float, size: float = 4.0, score: float = 0.9) -> list[float]:
    h = size / 2
    return [cx - h, cy - h, cx + h, cy + h, score]


def run(tracker: Tracker, frames: list[list[list[float]]]) -> list[dict[int, np.ndarray]]:
    """Per frame: track id -> box of the confirmed tracks returned."""
    out = []
    for dets in frames:
        tracks = tracker.update(np.asarray(dets, np.float64).reshape(-1, 5))
        out.append({t.track_id: t.box for t in tracks})
    return out


def centre(b: np.ndarray) -> np.ndarray:
    return (b[:2] + b[2:]) / 2


def test_two_crossing_targets_keep_their_ids():
    # Two 4 px targets on an X: one goes right-down, the other left-down; they cross at t=10.
    frames = []
    for t in range(21):
        a = box(10 + 3 * t, 10 + 3 * t)
        b = box(70 - 3 * t, 10 + 3 * t)
        frames.append([a, b])
    result = run(Tracker(TrackerConfig(min_hits=2)), frames)
    ids_left = set()
    for t, tracks in enumerate(result[2:], start=2):
        assert len(tracks) == 2
        for track_id, b in tracks.items():
            if centre(b)[0] < 40 if t < 10 else centre(b)[0] > 40:
                ids_left.add(track_id)  # the one that started on the left
    assert len(ids_left) == 1  # the left-starting target kept one id before and after


def test_target_moving_more_than_its_size_per_frame_stays_one_track():
    # 3 px target moving 9 px per frame (3x its size): consecutive boxes never overlap.
    frames = [[box(5 + 9 * t, 50 + 2 * t, size=3)] for t in range(30)]
    result = run(Tracker(), frames)
    ids = {i for tracks in result for i in tracks}
    assert ids == {1}
    assert sum(len(t) for t in result) == 30 - 2  # confirmed from the 3rd hit on


def test_one_frame_blip_never_confirms_and_min_hits_is_n():
    tracker = Tracker(TrackerConfig(min_hits=3))
    frames = [[] for _ in range(10)]
    frames[4] = [box(30, 30)]
    assert all(not t for t in run(tracker, frames))
    assert tracker.num_tracks == 0
    # a real target confirms on exactly the 3rd hit
    result = run(Tracker(TrackerConfig(min_hits=3)), [[box(30 + t, 30)] for t in range(5)])
    assert [len(t) for t in result] == [0, 0, 1, 1, 1]


def test_track_dies_after_m_misses_and_survives_fewer():
    cfg = TrackerConfig(min_hits=2, max_misses=5)
    frames = [[box(20 + t, 20)] for t in range(5)] + [[]] * 5 + [[box(30, 20)]]
    result = run(Tracker(cfg), frames)
    assert set(result[-1]) == {1}  # 5 misses survived, same id at the predicted place
    frames = [[box(20 + t, 20)] for t in range(5)] + [[]] * 6 + [[box(31, 20)] for _ in range(3)]
    result = run(Tracker(cfg), frames)
    assert 1 not in result[-1] and set(result[-1]) == {2}  # 6 misses: dead, a new track


def test_low_score_detection_extends_a_confirmed_track_but_starts_nothing():
    tracker = Tracker(TrackerConfig(min_hits=2, high_threshold=0.5, low_threshold=0.1))
    frames = [[box(20 + 2 * t, 20)] for t in range(4)]
    frames.append([box(28, 20, score=0.2), box(80, 80, score=0.3)])  # dip + low clutter
    result = run(tracker, frames)
    assert set(result[-1]) == {1}
    assert tracker.detection_track_ids.tolist() == [1, -1]
    assert tracker.num_tracks == 1


def test_track_score_and_velocity():
    tracker = Tracker(TrackerConfig(min_hits=1, score_momentum=0.5))
    tracks = []
    for t in range(20):
        tracks = tracker.update(np.array([box(10 + 2 * t, 40 - t, score=0.8)]))
    (track,) = tracks
    assert track.score == pytest.approx(0.8, abs=1e-4)
    np.testing.assert_allclose(track.velocity, [2.0, -1.0], atol=0.05)
    assert track.hits == 20 and track.age == 19 and track.trail.shape == (20, 2)


def test_accepts_detections_and_empty_input_and_reset():
    tracker = Tracker(TrackerConfig(min_hits=1))
    dets = Detections.from_numpy(np.array([[0, 0, 4, 4]]), np.array([0.9]), np.array([2]))
    (track,) = tracker.update(dets)
    assert track.label == 2 and track.track_id == 1
    assert tracker.update(Detections.empty()) == []
    assert tracker.update(np.zeros((0, 5))) == []
    tracker.reset()
    (track,) = tracker.update(
        Detections(torch.tensor([[5.0, 5, 9, 9]]), torch.tensor([1.0]), torch.tensor([0]))
    )
    assert track.track_id == 1


def test_nwd_cost_also_tracks_crossings():
    frames = [[box(10 + 3 * t, 10 + 3 * t), box(70 - 3 * t, 10 + 3 * t)] for t in range(21)]
    result = run(Tracker(TrackerConfig(min_hits=2, cost="nwd")), frames)
    assert {i for tracks in result for i in tracks} == {1, 2}


def test_bad_config_values_raise():
    with pytest.raises(ValueError, match="gate_probability"):
        TrackerConfig(gate_probability=0.5)
    with pytest.raises(ValueError, match="cost"):
        TrackerConfig(cost="iou")
