"""Box geometry in numpy (no torch): IoU and greedy NMS of xyxy boxes."""

from __future__ import annotations

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


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS (a box goes when its IoU with a kept, higher-scored box is > `iou_threshold`,
    as `mistd.models.ops.nms`); kept indices, highest score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    if order.size == 0:
        return order
    ordered = np.asarray(boxes, np.float64).reshape(-1, 4)[order]
    overlaps = np.triu(box_iou_xyxy(ordered, ordered) > iou_threshold, k=1)
    keep = np.ones(order.size, bool)
    for i in range(order.size):
        if keep[i]:
            keep &= ~overlaps[i]
    return order[keep]


def clip_to_frame(boxes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """xyxy boxes `[N, 4]` clipped to a `height x width` frame, and `keep [N]` bool: the boxes
    left with an area (one wholly in the letterbox padding, or with NaN corners, has none)."""
    clipped = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    with np.errstate(invalid="ignore"):
        clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0.0, width)
        clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0.0, height)
        keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, keep
