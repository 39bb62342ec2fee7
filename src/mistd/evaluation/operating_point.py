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

from mistd.boxes import box_iou_xyxy

__all__ = [
    "MatchCounts",
    "box_iou_xyxy",
    "counts_above",
    "match_flags",
    "match_image",
    "operating_point",
    "score_curve",
]


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
    operating_threshold: float = 0.5,
    iou: float = 0.5,
) -> MatchCounts:
    """Greedy matching on one image. Boxes xyxy `[N, 4]`; returns the image's TP/FP/n_gt."""
    scores, flags = match_flags(gt_boxes, gt_labels, det_boxes, det_scores, det_labels, iou)
    return counts_above(scores, flags, int(np.asarray(gt_boxes).reshape(-1, 4).shape[0]),
                        operating_threshold)  # fmt: skip


def counts_above(
    scores: np.ndarray, flags: np.ndarray, n_gt: int, operating_threshold: float
) -> MatchCounts:
    """TP/FP/n_gt of one image at `operating_threshold`, from its `match_flags`: the detections
    above a threshold are a prefix of the greedy order, so they match as if matched alone."""
    above = scores >= operating_threshold
    tp = int(flags[above].sum())
    return MatchCounts(tp=tp, fp=int(above.sum()) - tp, n_gt=n_gt)


def operating_point(
    images: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    operating_threshold: float = 0.5,
    iou: float = 0.5,
) -> dict[str, float]:
    """P/R/F1 over images given as `(gt_boxes, gt_labels, det_boxes, det_scores, det_labels)`."""
    total = MatchCounts()
    for gt_boxes, gt_labels, det_boxes, det_scores, det_labels in images:
        total.add(
            match_image(
                gt_boxes, gt_labels, det_boxes, det_scores, det_labels, operating_threshold, iou
            )
        )
    return total.metrics()


def match_flags(
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    det_labels: np.ndarray,
    iou: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """`(scores, true_positive)` of every detection of one image, matched greedily in decreasing
    score order as `match_image`. Greedy matching visits the detections by score, so those above
    any threshold match exactly as `match_image(..., operating_threshold)` matches them: one pass
    gives the operating point at every threshold (`score_curve`)."""
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels).reshape(-1)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-det_scores, kind="stable")
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)[order]
    det_labels = np.asarray(det_labels).reshape(-1)[order]
    ious = box_iou_xyxy(det_boxes, gt_boxes)
    ious[det_labels[:, None] != gt_labels[None, :]] = -1.0
    matched = np.zeros(gt_boxes.shape[0], dtype=bool)
    flags = np.zeros(det_boxes.shape[0], dtype=bool)
    for i in range(det_boxes.shape[0]):
        if gt_boxes.shape[0] == 0:
            break
        candidates = np.where(matched, -1.0, ious[i])
        j = int(np.argmax(candidates))
        if candidates[j] >= iou:
            matched[j] = True
            flags[i] = True
    return det_scores[order], flags


def score_curve(
    images: Iterable[tuple[np.ndarray, np.ndarray]], n_gt: int, points: int = 101
) -> dict:
    """The operating point at every score threshold, from `match_flags` of every image.

    Returns `{"best_f1", "best_f1_threshold", "f1_curve": {"score", "precision", "recall",
    "f1"}}`: the best F1 over all thresholds and the lowest score reaching it (use it as the
    model's operating point, `mistd.thresholds`), and the curve sampled at `points` thresholds
    evenly spaced over [0, 1]."""
    pairs = list(images)
    scores = np.concatenate([s for s, _ in pairs]) if pairs else np.zeros(0)
    flags = np.concatenate([f for _, f in pairs]) if pairs else np.zeros(0, bool)
    order = np.argsort(-scores, kind="stable")
    scores, flags = scores[order], flags[order]
    tp = np.cumsum(flags)
    kept = np.arange(1, len(scores) + 1)

    def at(count: np.ndarray, tps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        precision = np.where(count > 0, tps / np.maximum(count, 1), 0.0)
        recall = tps / n_gt if n_gt else np.zeros_like(tps, dtype=np.float64)
        f1 = np.where(precision + recall > 0, 2 * tps / np.maximum(count + n_gt, 1), 0.0)
        return precision, recall, f1

    grid = np.linspace(0.0, 1.0, points)
    # detections with score >= t: the first `count` of the descending scores
    count = np.searchsorted(-scores, -grid, side="right")
    tps = np.where(count > 0, tp[np.maximum(count - 1, 0)] if len(tp) else 0, 0)
    precision, recall, f1 = at(count, tps.astype(np.float64))
    best_f1, best_threshold = 0.0, 1.0
    if len(scores):
        # thresholds at each distinct score (the last detection of a run of equal scores)
        last = np.r_[scores[1:] != scores[:-1], True]
        _, _, f1_all = at(kept[last], tp[last].astype(np.float64))
        if f1_all.size and f1_all.max() > 0:
            k = int(np.argmax(f1_all))
            best_f1, best_threshold = float(f1_all[k]), float(scores[last][k])
    return {
        "best_f1": best_f1,
        "best_f1_threshold": best_threshold,
        "f1_curve": {
            "score": [round(float(v), 4) for v in grid],
            "precision": [round(float(v), 6) for v in precision],
            "recall": [round(float(v), 6) for v in recall],
            "f1": [round(float(v), 6) for v in f1],
        },
    }
