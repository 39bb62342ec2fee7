"""Run a detector over a data set and score it (the loop; the evaluator never runs a model).

`evaluate_detector(detector, dataset)` walks every sequence in order, reading each frame once
(videos decode forward), and keeps the causal window of the last T frames (docs/design.md §2: at a
sequence start the earliest frame is repeated). Detectors that stream (`reset()` + `push(frame)`:
learned models wrapped by `mistd.inference.streaming_detector`, which this loop does by default)
get one new frame per step, so a T-frame model costs one backbone pass per frame; other clip
detectors (classical ones) get the window. Class-aware NMS is the detector's job, so the numbers
follow the official protocol end to end; `stream=False` runs clip mode (the reference the
streaming path is tested against).
"""

from __future__ import annotations

import contextlib
import io
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from mistd.errors import InputError
from mistd.evaluation.coco import MIN_SCORE, COCOEvaluator
from mistd.evaluation.pdfa import PdFaMetric
from mistd.structures import Clip, Detections, FrameDataset, FrameRecord


class ClipDetector(Protocol):
    """Anything with `num_frames` and `detect(frames [T, H, W], bit_depth) -> Detections` (and
    optionally `frame_stride`, frames between its clip frames; 1 when absent)."""

    num_frames: int

    def detect(self, frames: np.ndarray, bit_depth: int) -> Detections: ...


def detect_sequences(
    detector: ClipDetector,
    dataset: FrameDataset,
    *,
    max_frames: int | None = None,
    progress: bool = True,
    stream: bool = True,
    timings: list[float] | None = None,
) -> Iterator[tuple[Clip, Detections]]:
    """THE detection loop: `(clip, detections)` for every frame of `dataset`, sequence by sequence.

    Each frame is read once (videos decode forward). Streaming detectors (`reset()` + `push()`;
    learned models are wrapped by `streaming_detector` unless `stream=False`) get one new frame per
    step; other clip detectors get the causal window `[T, H, W]` (docs/design.md §2). The clip's
    `key` record gets its size filled in when the index did not say it. `timings`, when given,
    receives the detector's seconds per frame. Detections are on the CPU, in original pixels.
    """
    import time

    from mistd.data.clips import causal_window, frame_stride_of, window_span
    from mistd.data.readers.frames import load_frame

    if stream:
        from mistd.inference.video_predictor import streaming_detector

        detector = streaming_detector(detector)
    streams = hasattr(detector, "push") and hasattr(detector, "reset")
    num_frames = int(detector.num_frames)
    stride = frame_stride_of(detector)
    total = dataset.num_frames if max_frames is None else min(dataset.num_frames, max_frames)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="detect", unit="frame", leave=False)
    done = 0
    try:
        for sequence in dataset.sequences:
            if done >= total:
                break
            window: deque[np.ndarray] = deque(maxlen=window_span(num_frames, stride))
            if streams:
                detector.reset()
            for position, record in enumerate(sequence.frames):
                if done >= total:
                    break
                frame, bit_depth = load_frame(record)
                window.append(frame)
                held = list(window)
                first = position - len(held) + 1
                positions = causal_window(position, num_frames, stride)
                clip = Clip(
                    frames=np.stack([held[k - first] for k in positions]),
                    bit_depth=bit_depth,
                    key=record,
                    frame_indices=[sequence.frames[k].index for k in positions],
                )
                start = time.perf_counter()
                if streams:
                    dets = detector.push(frame, bit_depth)
                else:
                    dets = detector.detect(clip.frames, bit_depth)
                if timings is not None:
                    timings.append(time.perf_counter() - start)
                if record.width is None or record.height is None:
                    # size known only once the frame is read (videos, image folders)
                    record.width, record.height = int(frame.shape[1]), int(frame.shape[0])
                done += 1
                if bar is not None:
                    bar.update(1)
                yield clip, dets.to("cpu")
    finally:
        if bar is not None:
            bar.close()


def evaluate_detector(
    detector: ClipDetector,
    dataset: FrameDataset,
    *,
    progress: bool = True,
    max_frames: int | None = None,
    op_threshold: float = 0.5,
    evaluator: COCOEvaluator | None = None,
    on_frame: Callable[[Clip, Detections], None] | None = None,
    stream: bool = True,
) -> tuple[dict, list[Detections]]:
    """Detect on every frame of `dataset` (`detect_sequences`) and compute the official metrics.

    Args:
        detector: a clip detector (interface 3 of the team contract) or a streaming one.
        dataset: the frames to score; records carry the ground-truth boxes.
        progress: show a progress bar.
        max_frames: stop after this many frames (sequence order), e.g. for a quick look.
        op_threshold: score threshold of the operating-point P/R/F1.
        evaluator: a `COCOEvaluator` to fill (reset first); a new one by default.
        on_frame: called with every clip and its detections (e.g. to write videos on the way).
        stream: run learned models streamed (one new frame per step; default) rather than in
            clip mode (T frames per step; the reference).

    Returns:
        `(metrics, detections)`: the `COCOEvaluator.compute()` dict (plus `ms_per_frame`, the mean
        detector time, and for mask data sets `pd`/`fa`: the box variant of
        `mistd.evaluation.pdfa` at `op_threshold`) and the detections of every frame in data set
        order.
    """
    if evaluator is None:
        evaluator = COCOEvaluator(dataset.class_names, MIN_SCORE, op_threshold)
    evaluator.reset()
    detections: list[Detections] = []
    records: list[FrameRecord] = []
    timings: list[float] = []
    pdfa = PdFaMetric()
    loop = detect_sequences(
        detector,
        dataset,
        max_frames=max_frames,
        progress=progress,
        stream=stream,
        timings=timings,
    )
    for clip, dets in loop:
        record = clip.key
        detections.append(dets)
        records.append(record)
        if on_frame is not None:
            on_frame(clip, dets)
        if record.mask is not None:
            gt_mask = cv2.imread(str(record.mask), cv2.IMREAD_GRAYSCALE)
            if gt_mask is None:
                raise InputError("cannot read the target mask image", path=record.mask)
            pdfa.update_boxes(dets.boxes.numpy(), dets.scores.numpy(), gt_mask, op_threshold)
        if len(records) == 256:
            evaluator.process(records, detections[-len(records) :])
            records = []
    if records:
        evaluator.process(records, detections[-len(records) :])
    metrics = evaluator.compute()
    metrics["ms_per_frame"] = 1000.0 * sum(timings) / len(timings) if timings else 0.0
    if pdfa.n_pixels:
        metrics.update({k: v for k, v in pdfa.compute().items() if k in ("pd", "fa")})
    return metrics, detections


def detector_class_names(detector) -> list[str] | None:
    """The class names a learned detector was trained with (from its run config), else None."""
    inner = getattr(detector, "detector", detector)  # streaming / track-confirmed wrappers
    inner = getattr(inner, "detector", inner)
    config = getattr(inner, "config", None) or {}
    names = (config.get("data") or {}).get("class_names") if isinstance(config, dict) else None
    return list(names) if names else None


def data_classes_for(detector, requested: str | None = None) -> str:
    """The `read_dataset(classes=...)` to score `detector` with: `requested` if given, else the
    detector's own class list when it has several, else `target` (all classes merged: classical
    and single-class detectors are scored class-agnostically, as the papers do)."""
    if requested:
        return requested
    names = detector_class_names(detector)
    return ",".join(names) if names and len(names) > 1 else "target"


def evaluate_with_breakdown(
    detector,
    dataset: FrameDataset,
    **kwargs,
) -> tuple[dict, list[Detections]]:
    """`evaluate_detector`, plus `metrics["breakdown"]` (class-agnostic, per class, confusion,
    per sequence attribute; `mistd.evaluation.breakdown`) where the data has several classes or
    per-sequence attributes. A multi-class model on one-class data is scored class-agnostically."""
    from mistd.evaluation.breakdown import breakdown, class_agnostic

    if isinstance(dataset, str | Path):
        from mistd.data.readers import read_dataset

        dataset = read_dataset(dataset)
    elif not isinstance(dataset, FrameDataset):
        raise InputError(
            f"expected a FrameDataset or the path of a data set, got {type(dataset).__name__}"
        )
    names = detector_class_names(detector)
    if names and len(names) > 1 and len(dataset.class_names) == 1:
        # a multi-class model on one-class ground truth (Anti-UAV, DAUB): every detection is a
        # target, whatever class the model gives it. Streamed first: a wrapper around a plain
        # detector would be bypassed by the streaming predictor built from its model.
        if kwargs.get("stream", True):
            from mistd.inference.video_predictor import streaming_detector

            detector = streaming_detector(detector)
        detector = class_agnostic(detector)
    metrics, detections = evaluate_detector(detector, dataset, **kwargs)
    if len(dataset.class_names) > 1 or any(s.attributes for s in dataset.sequences):
        records = [r for _, r in zip(detections, dataset.frames(), strict=False)]
        metrics["breakdown"] = breakdown(
            dataset, records, detections, kwargs.get("op_threshold", 0.5)
        )
    return metrics, detections


def evaluate_sampled(
    detector,
    dataset: FrameDataset,
    limit: int = 0,
    *,
    batch: int = 8,
    op_threshold: float = 0.5,
) -> dict:
    """Official metrics on at most `limit` key frames spread evenly over `dataset` (0 = all): the
    periodic evaluation of training. A sample (`0 < limit <` the data's frames) is scored in clip
    mode, each key frame with its own causal window, in batches (its frames do not come in order,
    and streaming every frame would cost more than the steps between); every frame (`limit` 0 or
    at least the data's frames) goes through the one streaming loop (`evaluate_with_breakdown`).
    Adds `breakdown` (see `evaluate_with_breakdown`) where the data has several classes or
    sequence attributes."""
    from mistd.data.clips import ClipSampler, frame_stride_of
    from mistd.evaluation.breakdown import breakdown

    if not 0 < limit < dataset.num_frames:
        metrics, _ = evaluate_with_breakdown(
            detector, dataset, progress=False, op_threshold=op_threshold
        )
        return metrics

    stride = frame_stride_of(detector)
    clips = ClipSampler(dataset, num_frames=detector.num_frames, frame_stride=stride)
    n = len(clips)
    indices = np.linspace(0, n - 1, limit).round().astype(int) if 0 < limit < n else range(n)
    indices = list(dict.fromkeys(int(i) for i in indices))
    evaluator = COCOEvaluator(dataset.class_names, MIN_SCORE, op_threshold)
    records: list[FrameRecord] = []
    detections: list[Detections] = []
    for lo in range(0, len(indices), batch):
        items = [clips[i] for i in indices[lo : lo + batch]]
        if hasattr(detector, "detect_batch"):
            dets = detector.detect_batch([c.frames for c in items], [c.bit_depth for c in items])
        else:
            dets = [detector.detect(c.frames, c.bit_depth) for c in items]
        dets = [d.to("cpu") for d in dets]
        evaluator.process([c.key for c in items], dets)
        records += [c.key for c in items]
        detections += dets
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        metrics = evaluator.compute()
    if len(dataset.class_names) > 1 or any(s.attributes for s in dataset.sequences):
        metrics["breakdown"] = breakdown(dataset, records, detections, op_threshold)
    return metrics
