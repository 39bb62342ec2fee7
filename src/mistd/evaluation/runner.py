"""Run a clip detector over a data set and score it (the loop; the evaluator never runs a model).

`evaluate_detector(detector, dataset)` walks `ClipSampler(dataset, detector.num_frames)` (one clip
per frame, key frame last, causal windows as in DESIGN.md §2), calls
`detector.detect(clip.frames, clip.bit_depth)` and feeds a `COCOEvaluator`. Class-aware NMS is the
detector's job (learned models: `predict(..., nms_iou=0.65)`; classical detectors output
non-overlapping component boxes), so the numbers follow the official protocol end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from mistd.errors import InputError
from mistd.evaluation.coco import MIN_SCORE, COCOEvaluator
from mistd.evaluation.pdfa import PdFaMetric
from mistd.structures import Clip, Detections, FrameDataset, FrameRecord


class ClipDetector(Protocol):
    """Anything with `num_frames` and `detect(frames [T, H, W], bit_depth) -> Detections`."""

    num_frames: int

    def detect(self, frames: np.ndarray, bit_depth: int) -> Detections: ...


def evaluate_detector(
    detector: ClipDetector,
    dataset: FrameDataset,
    *,
    progress: bool = True,
    max_frames: int | None = None,
    op_threshold: float = 0.5,
    evaluator: COCOEvaluator | None = None,
    on_frame: Callable[[Clip, Detections], None] | None = None,
) -> tuple[dict, list[Detections]]:
    """Detect on every frame of `dataset` and compute the official metrics.

    Args:
        detector: a clip detector (interface 3 of the team contract).
        dataset: the frames to score; records carry the ground-truth boxes.
        progress: show a progress bar.
        max_frames: stop after this many frames (sequence order), e.g. for a quick look.
        op_threshold: score threshold of the operating-point P/R/F1.
        evaluator: a `COCOEvaluator` to fill (reset first); a new one by default.
        on_frame: called with every clip and its detections (e.g. to write videos on the way).

    Returns:
        `(metrics, detections)`: the `COCOEvaluator.compute()` dict (plus `ms_per_frame`, the mean
        detector time, and for mask data sets `pd`/`fa`: the box variant of
        `mistd.evaluation.pdfa` at `op_threshold`) and the detections of every frame in data set
        order.
    """
    import time

    from mistd.data.clips import ClipSampler

    if evaluator is None:
        evaluator = COCOEvaluator(dataset.class_names, MIN_SCORE, op_threshold)
    evaluator.reset()
    sampler = ClipSampler(dataset, detector.num_frames)
    total = len(sampler) if max_frames is None else min(len(sampler), max_frames)
    detections: list[Detections] = []
    records: list[FrameRecord] = []
    seconds = 0.0
    pdfa = PdFaMetric()
    indices = range(total)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="detect", unit="frame", leave=False)
    for i in indices:
        clip = sampler[i]
        start = time.perf_counter()
        dets = detector.detect(clip.frames, clip.bit_depth)
        seconds += time.perf_counter() - start
        record = clip.key
        if record.width is None or record.height is None:
            # size known only once the frame is read (videos, image folders)
            height, width = clip.frames.shape[-2:]
            record.width, record.height = int(width), int(height)
        detections.append(dets.to("cpu"))
        records.append(record)
        if on_frame is not None:
            on_frame(clip, detections[-1])
        if record.mask is not None:
            gt_mask = cv2.imread(str(record.mask), cv2.IMREAD_GRAYSCALE)
            if gt_mask is None:
                raise InputError("cannot read the target mask image", path=record.mask)
            pdfa.update_boxes(
                detections[-1].boxes.numpy(), detections[-1].scores.numpy(), gt_mask, op_threshold
            )
        if len(records) == 256:
            evaluator.process(records, detections[-len(records) :])
            records = []
    if records:
        evaluator.process(records, detections[-len(records) :])
    metrics = evaluator.compute()
    metrics["ms_per_frame"] = 1000.0 * seconds / total if total else 0.0
    if pdfa.n_pixels:
        metrics.update({k: v for k, v in pdfa.compute().items() if k in ("pd", "fa")})
    return metrics, detections
