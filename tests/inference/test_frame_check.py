"""Frame check (`mistd.frame_check`): learned boxes regrown and scores weighted by contrast in the
frame they were found in (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest

from mistd.errors import InputError
from mistd.frame_check import (
    FrameCheck,
    FrameCheckStage,
    frame_noise,
    median,
    resolve_frame_check,
)
from mistd.inference.results import Results


def scene(seed: int = 0) -> np.ndarray:
    """A 120x160 noisy sky (mean 80, sigma 3) with one 14x6 target (+60) at x 70-84, y 40-46."""
    rng = np.random.default_rng(seed)
    frame = rng.normal(80.0, 3.0, (120, 160))
    frame[40:46, 70:84] += 60.0
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_noise_is_measured_in_the_frames_own_grey_levels():
    rng = np.random.default_rng(1)
    for sigma in (2.0, 8.0):
        frame = rng.normal(100.0, sigma, (200, 200)).astype(np.float32)
        # the residual after a sigma-2 blur keeps most, not all, of white noise
        assert 0.7 * sigma < frame_noise(frame) < 1.05 * sigma


def test_median_is_numpys():
    rng = np.random.default_rng(2)
    for shape in ((1,), (2,), (7,), (10, 12), (49, 49), (3, 4, 5)):
        values = rng.normal(size=shape).astype(np.float32)
        assert median(values) == pytest.approx(float(np.median(values)), abs=1e-7)
    ties = rng.integers(0, 4, (64, 64)).astype(np.float32)
    assert median(ties) == float(np.median(ties))


def test_regrow_fits_the_target_and_contrast_sinks_a_noise_box():
    frame = scene()
    # a square box off the 14x6 target (IoU < 0.5) and an equally scored box on flat sky
    boxes = np.array([[72, 37, 82, 47], [20, 90, 30, 100]], np.float32)
    results = Results(boxes, np.array([0.5, 0.5]), np.zeros(2), frame=frame)
    checked = FrameCheckStage(FrameCheck(regrow=True, contrast_scale=10.0))(results)
    target = checked.boxes[np.argmax(checked.scores)]
    # centred on the target's extent (70-84 x 40-46) plus 2 px a side: 18 x 10, the model's 10
    # px height kept (a box never shrinks)
    np.testing.assert_allclose(target, [68, 38, 86, 48], atol=1.0)
    # z ~ 20 (the smoothed peak over the noise): the target keeps most of its score, a noise
    # peak (z ~ 2) little
    assert checked.scores.max() > 0.4 and checked.scores.min() < 0.1
    # untouched settings: nothing changes
    same = FrameCheckStage(FrameCheck())(results)
    np.testing.assert_array_equal(same.boxes, boxes)


def test_boxes_regrown_onto_one_blob_merge_per_class():
    frame = scene()
    boxes = np.array([[72, 37, 82, 47], [74, 39, 80, 45], [71, 38, 83, 46]], np.float32)
    scores, labels = np.array([0.6, 0.5, 0.4]), np.array([0, 0, 1])
    results = Results(boxes, scores, labels, ["a", "b"], frame=frame)
    checked = FrameCheckStage(FrameCheck(regrow=True))(results)
    assert sorted(checked.labels.tolist()) == [0, 1]
    assert checked.scores[checked.labels == 0].item() == pytest.approx(0.6)


def test_without_a_frame_results_pass_through():
    results = Results(np.array([[1, 1, 5, 5]], np.float32), np.array([0.5]), np.zeros(1))
    assert FrameCheckStage(FrameCheck(regrow=True, contrast_scale=5))(results) is results


def test_settings_are_validated_and_switched():
    assert FrameCheck.from_dict(None) == FrameCheck()
    assert FrameCheck.from_dict({"regrow": True, "contrast_scale": 30}) == FrameCheck(True, 30.0)
    assert FrameCheck.from_dict({"regrow": True, "margin": 0}).margin == 0.0
    for bad, message in (
        ({"regrow": "yes"}, "regrow' must be true or false"),
        ({"contrast_scale": -1}, r"contrast_scale' must be a number in \[0, 1000\]"),
        ({"contrast_scale": float("nan")}, "contrast_scale"),
        ({"margin": 11}, r"margin' must be a number of pixels in \[0, 10\]"),
        ({"grow": True}, "unknown key"),
        ([True], "must be a dict"),
    ):
        with pytest.raises(InputError, match=message):
            FrameCheck.from_dict(bad, "model.pt")
    own = FrameCheck(True, 30.0)
    assert own.switched(None) == own and own.switched(False) == FrameCheck()
    assert own.switched(True) == own and FrameCheck().switched(True) == FrameCheck(regrow=True)
    assert [resolve_frame_check(v, own) for v in ("auto", "ON", "off", None)] == [
        own,
        own,
        FrameCheck(),
        own,
    ]
    assert resolve_frame_check("margin=0", own) == FrameCheck(True, 30.0, 0.0)
    assert resolve_frame_check("contrast_scale=5", FrameCheck()) == FrameCheck(True, 5.0)
    assert resolve_frame_check("regrow=off,contrast_scale=5", own) == FrameCheck(False, 5.0)
    for bad, message in (
        ("maybe", "expected auto, on, off or key=value"),
        ("size=3", "expected auto, on, off or key=value"),
        ("margin=wide", "margin: expected a number"),
        ("margin=40", r"margin' must be a number of pixels in \[0, 10\]"),
    ):
        with pytest.raises(InputError, match=message):
            resolve_frame_check(bad, own)
