"""Pd / Fa for mask ground truth (the single-frame IRSTD / NUDT-MIRSDT convention).

- Targets are the 8-connected components of the ground-truth mask; predicted blobs are the
  8-connected components of the predicted binary mask.
- A target is **detected** when a still-unmatched predicted blob's centroid lies closer than
  `distance` (3 px) to the target's centroid (strictly `< 3`, as in the widely used DNANet /
  NUDT-MIRSDT `PD_FA` reference code). Each target takes the nearest such blob; a blob detects at
  most one target.
- **Fa** = pixels of unmatched predicted blobs / all pixels (summed over frames).
- **Pd** = detected targets / all targets (0 when there is no target).

Box variant (`boxes_to_mask`): detectors that output boxes are scored by filling each box above a
score threshold into a mask — every pixel whose area overlaps the box (pixel `i` spans `[i, i+1)`)
— and then using the mask rules above. Overlapping or touching boxes merge into one blob (one
centroid), exactly as touching predicted pixels would.
"""

from __future__ import annotations

import cv2
import numpy as np


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids `[K, 2]` (x, y) and pixel areas `[K]` of the 8-connected components of `mask`."""
    mask = (np.asarray(mask) > 0).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return centroids[1:count].astype(np.float64), stats[1:count, cv2.CC_STAT_AREA].astype(np.int64)


def boxes_to_mask(
    boxes: np.ndarray,
    shape: tuple[int, int],
    scores: np.ndarray | None = None,
    operating_threshold: float = 0.5,
) -> np.ndarray:
    """Fill boxes `[N, 4]` xyxy (pixels) into a `[H, W]` bool mask (see module docstring).

    With `scores`, only boxes with `score >= operating_threshold` are filled.
    """
    height, width = shape
    mask = np.zeros((height, width), dtype=bool)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if scores is not None:
        boxes = boxes[np.asarray(scores).reshape(-1) >= operating_threshold]
    for x1, y1, x2, y2 in boxes:
        c1, r1 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
        c2, r2 = min(int(np.ceil(x2)), width), min(int(np.ceil(y2)), height)
        if c2 > c1 and r2 > r1:
            mask[r1:r2, c1:c2] = True
    return mask


class PdFaMetric:
    """Accumulate Pd / Fa over frames: `reset() / update(pred_mask, gt_mask) / compute()`.

    Args:
        distance: centroid distance (pixels) below which a blob detects a target.
    """

    def __init__(self, distance: float = 3.0) -> None:
        self.distance = float(distance)
        self.reset()

    def reset(self) -> None:
        self.n_targets = 0
        self.n_detected = 0
        self.false_pixels = 0
        self.n_pixels = 0

    def update(self, pred_mask: np.ndarray, gt_mask: np.ndarray) -> None:
        """Add one frame: `pred_mask`, `gt_mask` `[H, W]` (nonzero = target)."""
        pred_mask, gt_mask = np.asarray(pred_mask), np.asarray(gt_mask)
        if pred_mask.shape != gt_mask.shape:
            raise ValueError(f"mask shapes differ: {pred_mask.shape} vs {gt_mask.shape}")
        gt_centroids, _ = _components(gt_mask)
        pred_centroids, pred_areas = _components(pred_mask)
        matched = np.zeros(len(pred_centroids), dtype=bool)
        for centroid in gt_centroids:
            if len(pred_centroids) == 0:
                break
            dist = np.linalg.norm(pred_centroids - centroid, axis=1)
            dist[matched] = np.inf
            j = int(np.argmin(dist))
            if dist[j] < self.distance:
                matched[j] = True
                self.n_detected += 1
        self.n_targets += len(gt_centroids)
        self.false_pixels += int(pred_areas[~matched].sum())
        self.n_pixels += int(gt_mask.size)

    def update_boxes(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        gt_mask: np.ndarray,
        operating_threshold: float = 0.5,
    ) -> None:
        """Add one frame of box detections (filled into a mask, see `boxes_to_mask`)."""
        gt_mask = np.asarray(gt_mask)
        self.update(boxes_to_mask(boxes, gt_mask.shape[:2], scores, operating_threshold), gt_mask)

    def compute(self) -> dict[str, float | int]:
        """`{"pd", "fa", "n_targets", "n_detected", "false_pixels", "n_pixels"}`."""
        return {
            "pd": self.n_detected / self.n_targets if self.n_targets else 0.0,
            "fa": self.false_pixels / self.n_pixels if self.n_pixels else 0.0,
            "n_targets": self.n_targets,
            "n_detected": self.n_detected,
            "false_pixels": self.false_pixels,
            "n_pixels": self.n_pixels,
        }


def pd_fa(pred_masks, gt_masks, distance: float = 3.0) -> dict[str, float | int]:
    """Pd / Fa over paired sequences of `[H, W]` masks (see `PdFaMetric`)."""
    metric = PdFaMetric(distance)
    for pred, gt in zip(pred_masks, gt_masks, strict=True):
        metric.update(pred, gt)
    return metric.compute()
