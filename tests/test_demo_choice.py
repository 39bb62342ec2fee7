"""Which detector's video the demo writes: the best F1 at the operating point, whatever the
order the detectors ran in (quick: a fixture of metrics, no detector runs)."""

from __future__ import annotations

import itertools

import pytest

from mistd.demo import best_detector

# On the demo clip every shipped model reaches mAP50 1.0: the old rule (max mAP50, first of the
# ties) showed whichever ran first. What a viewer sees drawn is the operating point.
METRICS = {
    "tophat": {"mAP50": 0.62, "f1": 0.70, "op_f1": 0.55, "ms_per_frame": 12.0},
    "temporal": {"mAP50": 0.71, "f1": 0.78, "op_f1": 0.66, "ms_per_frame": 15.0},
    "yolox-ir-s": {"mAP50": 1.0, "f1": 1.0, "op_f1": 0.97, "ms_per_frame": 170.0},
    "mf-residual-ir-s": {"mAP50": 1.0, "f1": 1.0, "op_f1": 0.99, "ms_per_frame": 500.0},
    "chal-ir-s": {"mAP50": 1.0, "f1": 1.0, "op_f1": 0.99, "ms_per_frame": 390.0},
}


@pytest.mark.parametrize("order", list(itertools.permutations(METRICS))[::7])
def test_best_is_the_highest_operating_point_f1_in_any_order(order):
    metrics = {name: METRICS[name] for name in order}
    # op_f1 0.99 twice (mAP50 and F1 tied too): the faster one, not the first one
    assert best_detector(metrics) == "chal-ir-s"


def test_operating_point_f1_comes_before_map50_and_ties_fall_through():
    metrics = {
        "high-map": {"mAP50": 0.95, "f1": 0.9, "op_f1": 0.40, "ms_per_frame": 10.0},
        "high-op-f1": {"mAP50": 0.80, "f1": 0.85, "op_f1": 0.80, "ms_per_frame": 10.0},
    }
    assert best_detector(metrics) == "high-op-f1"
    tied = {
        "b": {"mAP50": 0.9, "f1": 0.9, "op_f1": 0.8, "ms_per_frame": 10.0},
        "a": {"mAP50": 0.9, "f1": 0.9, "op_f1": 0.8, "ms_per_frame": 10.0},
        "c": {"mAP50": 0.9, "f1": 0.95, "op_f1": 0.8, "ms_per_frame": 99.0},
    }
    assert best_detector(tied) == "c"  # same op_f1 and mAP50: the better PR-curve F1
    del tied["c"]
    assert best_detector(tied) == "a"  # all equal: by name, never by order


def test_without_ground_truth_the_last_detector_is_shown():
    assert best_detector({"tophat": {}, "yolox-ir-s": {}}, labelled=False) == "yolox-ir-s"
    with pytest.raises(ValueError):
        best_detector({})
