"""Operating-point P/R/F1: greedy IoU matching on a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from mistd.evaluation.operating_point import box_iou_xyxy, match_image, operating_point


def _images():
    gt_a, gt_b = [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]
    image1 = (
        np.array([gt_a, gt_b]),
        np.array([0, 0]),
        # d1 hits A (0.9); d2 duplicates A (0.8, a false positive); d3 hits B at 0.3
        np.array([[1.0, 0.0, 11.0, 10.0], [0.0, 1.0, 10.0, 11.0], [20.0, 20.0, 30.0, 30.0]]),
        np.array([0.9, 0.8, 0.3]),
        np.array([0, 0, 0]),
    )
    image2 = (np.zeros((0, 4)), np.zeros(0), np.array([[5.0, 5.0, 9.0, 9.0]]), [0.6], [0])
    return [image1, image2]


def test_hand_case_at_two_thresholds() -> None:
    # thr 0.5: TP 1 (d1), FP 2 (d2, image2), 2 targets -> P 1/3, R 1/2, F1 0.4
    m = operating_point(_images(), operating_threshold=0.5)
    assert m["op_precision"] == pytest.approx(1 / 3)
    assert m["op_recall"] == pytest.approx(0.5)
    assert m["op_f1"] == pytest.approx(0.4)
    # thr 0.2: d3 joins as TP -> TP 2, FP 2 -> P 0.5, R 1, F1 2/3
    m = operating_point(_images(), operating_threshold=0.2)
    assert (m["op_precision"], m["op_recall"]) == pytest.approx((0.5, 1.0))
    assert m["op_f1"] == pytest.approx(2 / 3)


def test_class_mismatch_and_iou_threshold() -> None:
    gt = np.array([[0.0, 0.0, 10.0, 10.0]])
    # right place, wrong class -> FP and the target is missed
    counts = match_image(gt, [0], np.array([[0.0, 0.0, 10.0, 10.0]]), [0.9], [1])
    assert (counts.tp, counts.fp, counts.n_gt) == (0, 1, 1)
    # IoU exactly 0.5 counts (>=)
    box = np.array([[0.0, 0.0, 10.0, 5.0]])
    assert box_iou_xyxy(box, gt)[0, 0] == pytest.approx(0.5)
    assert match_image(gt, [0], box, [0.9], [0]).tp == 1


def test_empty_everything() -> None:
    m = operating_point([(np.zeros((0, 4)), [], np.zeros((0, 4)), [], [])])
    assert m == {"op_precision": 0.0, "op_recall": 0.0, "op_f1": 0.0}


def test_score_curve_equals_the_operating_point_at_every_threshold():
    """One greedy pass gives P/R/F1 at every threshold (what `metrics.json` records), equal to
    `operating_point` run at each one; the best F1 and the lowest score that reaches it."""
    from mistd.evaluation.operating_point import match_flags, operating_point, score_curve

    rng = np.random.default_rng(0)
    images = []
    for _ in range(6):
        gt = rng.uniform(0, 50, (3, 2))
        gt_boxes = np.concatenate([gt, gt + 6], axis=1)
        near = gt_boxes[rng.integers(0, 3, 4)] + rng.normal(0, 1.0, (4, 4))
        far = np.concatenate([rng.uniform(60, 90, (3, 2))] * 2, axis=1) + [0, 0, 5, 5]
        det_boxes = np.concatenate([near, far])
        scores = np.round(rng.uniform(0, 1, len(det_boxes)), 2)  # ties included
        images.append((gt_boxes, np.zeros(3, int), det_boxes, scores, np.zeros(7, int)))
    curve = score_curve([match_flags(*image) for image in images], n_gt=18)
    for k in range(0, 101, 7):
        t = curve["f1_curve"]["score"][k]
        expected = operating_point(images, operating_threshold=t)
        assert curve["f1_curve"]["f1"][k] == pytest.approx(expected["op_f1"], abs=1e-6), t
        assert curve["f1_curve"]["precision"][k] == pytest.approx(expected["op_precision"], 1e-5)
    best = operating_point(images, operating_threshold=curve["best_f1_threshold"])["op_f1"]
    assert curve["best_f1"] == pytest.approx(best)
    assert curve["best_f1"] >= max(curve["f1_curve"]["f1"]) - 1e-6  # the curve is rounded
    empty = score_curve([], n_gt=0)
    assert empty["best_f1"] == 0.0 and len(empty["f1_curve"]["f1"]) == 101
