"""The project's one NMS (`mistd.boxes.nms`, a sweep over x-overlapping pairs) against the plain
greedy rule over the full IoU matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistd.boxes import batched_nms, nms
from mistd.models import ops


def _dense_greedy(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS, the rule written out: every pair's IoU (torch's `box_iou`, float32), in
    descending score order (ties: input order) a box is kept unless a kept one overlaps it."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    iou = ops.box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy()
    keep: list[int] = []
    for i in order:
        if not any(iou[i, j] > threshold for j in keep):
            keep.append(i)
    return keep


def _scene(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates as at a low scoring floor: clusters of near-duplicates around a few targets,
    scattered small boxes, a few large ones, degenerate boxes and tied scores."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 600, (8, 2))
    xy = np.concatenate(
        [
            centres[rng.integers(0, 8, n // 2)] + rng.normal(0, 2.0, (n // 2, 2)),
            rng.uniform(0, 600, (n - n // 2, 2)),
        ]
    )
    wh = rng.uniform(2, 20, (n, 2))
    wh[:10] = rng.uniform(100, 300, (10, 2))  # large boxes overlap many
    wh[10:15] = 0.0  # degenerate: no area, suppress nothing
    wh[15:18, 0] = -3.0  # inverted
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0.001, 1, n).astype(np.float32)
    scores[20:40] = scores[40]  # ties keep the input order
    labels = rng.integers(0, 3, n)
    return boxes, scores, labels


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.65, 0.9])
def test_nms_equals_the_greedy_rule_on_every_pair(seed, threshold):
    boxes, scores, _ = _scene(seed)
    got = nms(boxes, scores, threshold)
    assert got.dtype == np.int64
    assert got.tolist() == _dense_greedy(boxes, scores, threshold)


def test_nms_with_overflowed_boxes_and_a_negative_threshold():
    boxes, scores, _ = _scene(0, 60)
    boxes[3, 2] = np.inf  # an exp-overflowed size: NaN IoUs suppress nothing, as in torch
    boxes[4, 3] = np.nan
    assert nms(boxes, scores, 0.65).tolist() == _dense_greedy(boxes, scores, 0.65)
    # a negative threshold suppresses boxes that do not overlap too: all but the best go
    assert nms(boxes, scores, -0.1).tolist() == _dense_greedy(boxes, scores, -0.1)


def test_batched_nms_keeps_classes_apart_and_torch_gets_the_same():
    boxes, scores, labels = _scene(3)
    got = batched_nms(boxes, scores, labels, 0.65)
    want: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        want += members[_dense_greedy(boxes[members], scores[members], 0.65)].tolist()
    assert sorted(got.tolist()) == sorted(want)
    assert np.all(np.diff(scores[got]) <= 0)  # best first
    through_torch = ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels), 0.65
    )
    assert through_torch.tolist() == got.tolist()
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.65).shape == (0,)


def test_nms_refuses_mismatched_scores():
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)
