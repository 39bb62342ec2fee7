"""Pd / Fa on hand-computed masks, and the box -> mask variant."""

from __future__ import annotations

import numpy as np
import pytest

from mistd.evaluation.pdfa import PdFaMetric, boxes_to_mask, pd_fa


def test_hand_case() -> None:
    gt = np.zeros((64, 64), dtype=np.uint8)
    gt[10:13, 10:13] = 1  # target 1, centroid (x 11, y 11)
    gt[30, 40] = 1  # target 2, centroid (40, 30)
    pred = np.zeros_like(gt)
    pred[10:13, 12:15] = 1  # centroid (13, 11): 2 px from target 1 -> detected, not false
    pred[30, 43] = 1  # centroid (43, 30): exactly 3 px from target 2 -> NOT detected (< 3)
    pred[50:52, 50:52] = 1  # a 4-pixel false alarm
    m = pd_fa([pred], [gt])
    assert m["n_targets"] == 2 and m["n_detected"] == 1
    assert m["pd"] == pytest.approx(0.5)
    assert m["false_pixels"] == 5
    assert m["fa"] == pytest.approx(5 / 4096)


def test_one_blob_detects_one_target_and_accumulates() -> None:
    gt = np.zeros((32, 32), dtype=bool)
    gt[10, 10] = gt[10, 12] = True  # two targets 2 px apart
    pred = np.zeros_like(gt)
    pred[10, 11] = True  # one blob between them: 1 px from both
    metric = PdFaMetric()
    metric.update(pred, gt)
    metric.update(np.zeros_like(gt), np.zeros_like(gt))  # an empty frame counts its pixels
    m = metric.compute()
    assert (m["n_targets"], m["n_detected"], m["false_pixels"]) == (2, 1, 0)
    assert m["n_pixels"] == 2 * 32 * 32
    assert PdFaMetric().compute()["pd"] == 0.0


def test_boxes_to_mask_and_box_variant() -> None:
    mask = boxes_to_mask(np.array([[9.5, 9.5, 12.2, 12.0], [60.0, 60.0, 70.0, 70.0]]), (64, 64))
    rows, cols = np.nonzero(mask[:20, :20])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (9, 11, 9, 12)
    assert mask[60:, 60:].all() and mask.sum() == 12 + 16  # the second box is clipped
    assert not boxes_to_mask([[1, 1, 5, 5]], (8, 8), scores=[0.2], operating_threshold=0.3).any()
    gt = np.zeros((32, 32), dtype=np.uint8)
    gt[15:18, 15:18] = 1  # centroid (16, 16)
    metric = PdFaMetric()
    metric.update_boxes(np.array([[14.0, 14.0, 19.0, 19.0], [0, 0, 2, 2]]), [0.9, 0.8], gt)
    m = metric.compute()
    assert m["n_detected"] == 1 and m["false_pixels"] == 4
