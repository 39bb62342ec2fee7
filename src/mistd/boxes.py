"""Box geometry in numpy (no torch): IoU and greedy NMS of xyxy boxes (the project's one NMS),
boxes of blobs in a probability map (dense models such as `tinyseg`)."""

from __future__ import annotations

import numpy as np

BLOB_WINDOW = 48  # px each side of a peak searched for its blob (boxes up to 97 px)
BLOB_CHUNK = 256  # candidate peaks checked against the kept boxes at once


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


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS on xyxy boxes `[N, 4]`: kept indices `[K]` (int64), highest score first.

    A box goes when its IoU with a kept, higher-scored box is > `iou_threshold` (torchvision's
    rule; score ties keep the input order). The one NMS of the project: the torch post-processing
    (`mistd.models.ops.nms`), the onnxruntime detector and the result stages all call it.

    IoU in float32 as `mistd.models.ops.box_iou` computes it (areas of degenerate boxes 0, union
    floored at 1e-9; NaN IoUs of overflowed boxes suppress nothing). Only pairs whose x-ranges
    overlap can have IoU > 0, so those are found by a sweep over the boxes sorted by x1 and only
    they are scored: at the 0.001 scoring floor a 640x512 frame has ~1000 candidates, nearly all
    apart, where the full IoU matrix cost 14-35 ms.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores).reshape(-1)
    if len(scores) != len(boxes):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    ranked = boxes[order]
    with np.errstate(over="ignore", invalid="ignore"):
        if iou_threshold >= 0 and np.isfinite(ranked).all():
            first, second = _x_overlapping_pairs(ranked)
        else:  # every pair (a negative threshold suppresses boxes apart too)
            first, second = np.triu_indices(len(ranked), k=1)
        suppressing = _pair_iou(ranked, first, second) > iou_threshold
    first, second = first[suppressing], second[suppressing]
    keep = np.ones(len(order), dtype=bool)
    if len(first):
        by_first = np.argsort(first, kind="stable")
        first, second = first[by_first], second[by_first]
        starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
        ends = np.r_[starts[1:], len(first)]
        # in rank order: a box still kept suppresses its overlaps of lower rank
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            if keep[first[start]]:
                keep[second[start:end]] = False
    return order[keep]


def _x_overlapping_pairs(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs `(i, j)`, i < j, of the (finite) boxes whose x-ranges overlap with a positive
    width: sorted by x1, box p overlaps the boxes after it whose x1 is below its x2."""
    by_x = np.argsort(boxes[:, 0], kind="stable")
    x1 = boxes[by_x, 0]
    position = np.arange(len(boxes))
    ends = np.searchsorted(x1, boxes[by_x, 2], side="left")
    counts = np.maximum(ends - position - 1, 0)
    left = np.repeat(position, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    right = left + 1 + offsets
    a, b = by_x[left], by_x[right]
    return np.minimum(a, b), np.maximum(a, b)


def _pair_iou(boxes: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of `boxes[first[k]]` and `boxes[second[k]]` (float32 boxes `[N, 4]`) -> `[K]`."""
    top_left = np.maximum(boxes[first, :2], boxes[second, :2])
    bottom_right = np.minimum(boxes[first, 2:], boxes[second, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    area = sides[:, 0] * sides[:, 1]
    union = area[first] + area[second] - inter
    return inter / np.maximum(union, np.float32(1e-9))


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Class-aware `nms` (boxes of different labels never suppress each other): each class
    offset into its own region of the plane (torchvision's trick). Kept indices, best first."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros((0,), dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflowed boxes: see `nms`
        offsets = np.asarray(labels).astype(np.float32) * (boxes.max() - boxes.min() + 1)
        return nms(boxes + offsets[:, None], scores, iou_threshold)


def clip_to_frame(boxes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """xyxy boxes `[N, 4]` clipped to a `height x width` frame, and `keep [N]` bool: the boxes
    left with an area (one wholly in the letterbox padding, or with NaN corners, has none)."""
    clipped = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    with np.errstate(invalid="ignore"):
        clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0.0, width)
        clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0.0, height)
        keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped, keep


def blob_boxes(
    prob: np.ndarray,
    score: np.ndarray,
    decode_floor: float,
    mask_level: float,
    max_detections: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One class's maps `[H, W]` -> `(boxes [N, 4] xyxy, scores [N])`, highest first.

    Candidates are the local maxima (3x3) of `score` above `decode_floor`; each one's box is the
    8-connected blob of `prob` pixels >= `mask_level` x its peak probability around it (within
    `BLOB_WINDOW` px); a peak inside a box already kept is dropped (same blob). At most
    `max_detections` boxes. `score` is any map ordered like `prob` (`TinySeg` gives the
    tempered probability, which does not round to 1.0 where `prob` does).
    """
    import cv2

    height, width = prob.shape
    peaks = (score >= cv2.dilate(score, np.ones((3, 3), np.uint8))) & (score > decode_floor)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-score[ys, xs], kind="stable")  # candidates, best first
    ys, xs = ys[order], xs[order]
    covered = np.zeros((height, width), bool)  # pixels of the boxes kept so far
    boxes: list[list[float]] = []
    scores: list[float] = []
    for y, x in _uncovered_peaks(ys, xs, covered):
        y0, x0 = max(0, y - BLOB_WINDOW), max(0, x - BLOB_WINDOW)
        window = prob[y0 : y + BLOB_WINDOW + 1, x0 : x + BLOB_WINDOW + 1]
        blob = (window >= mask_level * float(prob[y, x])).astype(np.uint8)
        _, labels = cv2.connectedComponents(blob, connectivity=8)
        rows, cols = np.nonzero(labels == labels[y - y0, x - x0])
        top, left = y0 + int(rows.min()), x0 + int(cols.min())
        bottom, right = y0 + int(rows.max()) + 1, x0 + int(cols.max()) + 1
        boxes.append([left, top, right, bottom])
        scores.append(float(score[y, x]))
        covered[top:bottom, left:right] = True
        if len(boxes) >= max_detections:
            break
    boxes_array = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    boxes_array[:, [0, 2]] = boxes_array[:, [0, 2]].clip(0, width)
    boxes_array[:, [1, 3]] = boxes_array[:, [1, 3]].clip(0, height)
    return boxes_array, np.asarray(scores, dtype=np.float32)


def _uncovered_peaks(ys: np.ndarray, xs: np.ndarray, covered: np.ndarray):
    """The peaks `(y, x)`, in order, that no kept box covers when their turn comes (`covered`
    `[H, W]` is read as the caller marks kept boxes in it). A peak inside a kept box is the same
    blob; a quantized or noisy map has tens of thousands of peaks above the floor: they are
    dropped a chunk at a time, and the survivors of a chunk checked one by one (a box kept
    meanwhile may cover them)."""
    for start in range(0, len(ys), BLOB_CHUNK):
        chunk = slice(start, start + BLOB_CHUNK)
        for i in start + np.flatnonzero(~covered[ys[chunk], xs[chunk]]):
            y, x = int(ys[i]), int(xs[i])
            if not covered[y, x]:
                yield y, x


def blob_detections(
    prob: np.ndarray,
    score: np.ndarray,
    decode_floor: float,
    mask_level: float,
    max_detections: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class maps `[C, H, W]` -> `(boxes [N, 4] xyxy float32, scores [N] float32, labels [N]
    int64)`: `blob_boxes` of each class, the `max_detections` highest of all, highest first."""
    boxes, scores, labels = [], [], []
    for cls in range(len(prob)):
        b, s = blob_boxes(prob[cls], score[cls], decode_floor, mask_level, max_detections)
        boxes.append(b)
        scores.append(s)
        labels.append(np.full(len(s), cls, dtype=np.int64))
    scores_all = np.concatenate(scores)
    order = np.argsort(-scores_all, kind="stable")[:max_detections]
    return np.concatenate(boxes)[order], scores_all[order], np.concatenate(labels)[order]
