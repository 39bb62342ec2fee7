"""Draw boxes and scores on infrared frames for display (BGR uint8 images).

Detections are drawn in green with their score, ground truth in magenta, so both are visible on a
gray frame. 16-bit (and any non-uint8) frames are normalised for display with a percentile stretch.
"""

from __future__ import annotations

import cv2
import numpy as np

DET_COLOR = (0, 255, 0)  # BGR green
GT_COLOR = (255, 0, 255)  # BGR magenta


def to_display(
    frame: np.ndarray,
    low: float = 0.5,
    high: float = 99.5,
    *,
    stretch: bool | None = None,
    bgr: bool = True,
) -> np.ndarray:
    """`[H, W]` (or `[H, W, 3]`) frame of any dtype -> `[H, W, 3]` BGR uint8 for display.

    Args:
        low, high: percentiles stretched onto 0..255 (robust to hot pixels). When they coincide
            (a flat frame), `low` maps to 0 and each unit above it to 255 levels, so a few
            brighter pixels on a flat background stay visible.
        stretch: None = stretch non-uint8 frames only (uint8 frames are kept as they are);
            True = stretch uint8 frames too; False = never stretch (other dtypes clipped to 0..255).
        bgr: False = return `[H, W]` gray uint8 instead (the first channel of a 3-channel frame).
    """
    frame = np.asarray(frame)
    if not bgr and frame.ndim == 3:
        frame = frame[..., 0]
    if stretch is None:
        stretch = frame.dtype != np.uint8
    if stretch:
        values = frame.astype(np.float32)
        lo, hi = np.percentile(values, [low, high])
        hi = max(hi, lo + 1.0)
        frame = np.clip((values - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    elif frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if bgr and frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(frame)


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray | None = None,
    color: tuple[int, int, int] = DET_COLOR,
    thickness: int = 1,
    labels: list[str] | None = None,
) -> np.ndarray:
    """Draw xyxy `boxes [N, 4]` (with optional `scores [N]` text) on a BGR uint8 image, in place."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    height = image.shape[0]
    font_scale = max(0.3, min(0.5, height / 1000))
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        p1 = (int(np.floor(x1)), int(np.floor(y1)))
        p2 = (int(np.ceil(x2)) - 1, int(np.ceil(y2)) - 1)
        cv2.rectangle(image, p1, p2, color, thickness, lineType=cv2.LINE_8)
        text = labels[i] if labels is not None else ""
        if scores is not None:
            text = f"{text} {float(scores[i]):.2f}".strip()
        if text:
            y = p1[1] - 3 if p1[1] > 10 else p2[1] + 12
            cv2.putText(
                image, text, (p1[0], y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, color, 1, cv2.LINE_AA
            )
    return image


def overlay(
    frame: np.ndarray,
    boxes: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    gt_boxes: np.ndarray | None = None,
    display_threshold: float = 0.0,
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
) -> np.ndarray:
    """A display copy of `frame` with detections (score >= threshold) and ground truth drawn.

    Args:
        frame: `[H, W]` uint8/uint16 (or BGR) frame.
        boxes, scores: detections `[N, 4]` xyxy and `[N]`.
        gt_boxes: ground-truth boxes `[M, 4]` xyxy, drawn in magenta.
        display_threshold: detections below it are not drawn.
        labels, class_names: `[N]` class ids and their names, written before the score.
    Returns:
        `[H, W, 3]` BGR uint8 image.
    """
    image = to_display(frame).copy()
    if gt_boxes is not None and len(gt_boxes):
        draw_boxes(image, gt_boxes, None, GT_COLOR)
    if boxes is not None and len(boxes):
        boxes = np.asarray(boxes).reshape(-1, 4)
        if scores is not None:
            scores = np.asarray(scores).reshape(-1)
            keep = scores >= display_threshold
            boxes, scores = boxes[keep], scores[keep]
            if labels is not None:
                labels = np.asarray(labels).reshape(-1)[keep]
        names = None
        if labels is not None and class_names is not None and len(class_names) > 1:
            names = [class_names[int(c)] if 0 <= c < len(class_names) else str(c) for c in labels]
        draw_boxes(image, boxes, scores, DET_COLOR, labels=names)
    return image
