"""Operating-point precision / recall / F1 at one score threshold (greedy IoU matching).

The official protocol's numbers (`mistd.evaluation.coco`) summarise the whole PR curve. A user who
deploys a detector picks ONE score threshold; these are the numbers at that threshold:

- detections with `score >= threshold` are kept;
- per image and class, detections are visited in decreasing score order and each one is matched to
  the still-unmatched ground-truth box of its class with the highest IoU, if that IoU >= `iou`
  (0.5): a true positive; otherwise a false positive (duplicates are false positives, as in COCO);
- unmatched ground-truth boxes are misses;
- P = TP / (TP + FP) (0 when nothing is detected), R = TP / n_gt (0 when there is no target),
  F1 = 2PR / (P + R) (0 when P + R = 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix `[N, M]` between boxes `a [N, 4]` and `b [M, 4]` (xyxy, continuous pixels)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class MatchCounts:
    """True positives, false positives and ground-truth count accumulated over images."""

    tp: int = 0
    fp: int = 0
    n_gt: int = 0

    def add(self, other: MatchCounts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.n_gt += other.n_gt

    def metrics(self) -> dict[str, float]:
        """`{"op_precision", "op_recall", "op_f1"}` from the counts."""
        n_det = self.tp + self.fp
        precision = self.tp / n_det if n_det else 0.0
        recall = self.tp / self.n_gt if self.n_gt else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        return {"op_precision": precision, "op_recall": recall, "op_f1": f1}


def match_image(
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    det_labels: np.ndarray,
    score_threshold: float = 0.5,
    iou: float = 0.5,
) -> MatchCounts:
    """Greedy matching on one image. Boxes xyxy `[N, 4]`; returns the image's TP/FP/n_gt."""
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels).reshape(-1)
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    det_labels = np.asarray(det_labels).reshape(-1)
    keep = det_scores >= score_threshold
    det_boxes, det_scores, det_labels = det_boxes[keep], det_scores[keep], det_labels[keep]
    order = np.argsort(-det_scores, kind="stable")
    det_boxes, det_labels = det_boxes[order], det_labels[order]
    ious = box_iou_xyxy(det_boxes, gt_boxes)
    # a detection may only match a target of its own class
    ious[det_labels[:, None] != gt_labels[None, :]] = -1.0
    matched = np.zeros(gt_boxes.shape[0], dtype=bool)
    tp = 0
    for i in range(det_boxes.shape[0]):
        if gt_boxes.shape[0] == 0:
            break
        candidates = np.where(matched, -1.0, ious[i])
        j = int(np.argmax(candidates))
        if candidates[j] >= iou:
            matched[j] = True
            tp += 1
    return MatchCounts(tp=tp, fp=int(det_boxes.shape[0]) - tp, n_gt=int(gt_boxes.shape[0]))


def operating_point(
    images: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    score_threshold: float = 0.5,
    iou: float = 0.5,
) -> dict[str, float]:
    """P/R/F1 over images given as `(gt_boxes, gt_labels, det_boxes, det_scores, det_labels)`."""
    total = MatchCounts()
    for gt_boxes, gt_labels, det_boxes, det_scores, det_labels in images:
        total.add(
            match_image(
                gt_boxes, gt_labels, det_boxes, det_scores, det_labels, score_threshold, iou
            )
        )
    return total.metrics()
