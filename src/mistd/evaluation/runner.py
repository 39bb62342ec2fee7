"""Run a detector over a data set and score it (the loop; the evaluator never runs a model).

`detect_sequences(predictor, dataset)` walks every sequence in order through a
`mistd.inference.predictor.Predictor` (which owns streaming, the input size, class merging and
track confirmation), reading each frame once (videos decode forward); a bare detector (a
classical one, a `ClipDetector`) is put in a Predictor first (`as_predictor`). Scoring takes
every box above the decoding floor (`keep_all`), as the official protocol does; `stream=False`
runs trained models in clip mode (the reference the streaming path is tested against).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mistd.errors import InputError
from mistd.evaluation.coco import COCOEvaluator
from mistd.evaluation.pdfa import PdFaMetric
from mistd.inference.predictor import Predictor
from mistd.inference.results import Results
from mistd.structures import FrameDataset, FrameRecord


def as_predictor(detector: Any, stream: bool = True) -> Predictor:
    """`detector` itself when it is a `Predictor`, else a Predictor running it (`stream`:
    trained models stream, else clip mode)."""
    if isinstance(detector, Predictor):
        return detector
    return Predictor(detector, stream=stream, keep_all=True)


def detect_sequences(
    detector: Any,
    dataset: FrameDataset,
    *,
    max_frames: int | None = None,
    progress: bool = True,
    stream: bool = True,
) -> Iterator[Results]:
    """THE detection loop: the `Results` of every frame of `dataset`, sequence by sequence
    (`results.record` its record, `results.frame` the frame, `results.extra["seconds"]` the
    detector's time). Every box above the decoding floor is kept (for scoring)."""
    predictor = as_predictor(detector, stream)
    keep_all = predictor.keep_all
    predictor.keep_all = True
    total = dataset.num_frames if max_frames is None else min(dataset.num_frames, max_frames)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="detect", unit="frame", leave=False)
    try:
        for results in predictor.predict(dataset, max_frames=total):
            if bar is not None:
                bar.update(1)
            yield results
    finally:
        predictor.keep_all = keep_all
        if bar is not None:
            bar.close()


def evaluate_detector(
    detector: Any,
    dataset: FrameDataset,
    *,
    progress: bool = True,
    max_frames: int | None = None,
    operating_threshold: float | None = None,
    evaluator: COCOEvaluator | None = None,
    on_results: Callable[[Results], None] | None = None,
    stream: bool = True,
) -> tuple[dict, list[Results]]:
    """Detect on every frame of `dataset` (`detect_sequences`) and compute the official metrics.

    Args:
        detector: a `Predictor`, or a detector `as_predictor` runs.
        dataset: the frames to score; records carry the ground-truth boxes.
        progress: show a progress bar.
        max_frames: stop after this many frames (sequence order), e.g. for a quick look.
        operating_threshold: score threshold of the operating-point P/R/F1 (default: the model's
            operating threshold, `Predictor.thresholds.operating`).
        evaluator: a `COCOEvaluator` to fill (reset first); a new one by default.
        on_results: called with every frame's `Results` (e.g. to write videos on the way).
        stream: for a bare detector, run trained models streamed (default) or in clip mode.

    Returns:
        `(metrics, results)`: the `COCOEvaluator.compute()` dict (plus `ms_per_frame`, the mean
        detector time, `thresholds`, and for mask data sets `pd`/`fa`: the box variant of
        `mistd.evaluation.pdfa` at `operating_threshold`) and the `Results` of every frame in
        data set order.
    """
    predictor = as_predictor(detector, stream)
    if operating_threshold is None:
        operating_threshold = predictor.thresholds.operating
    if evaluator is None:
        evaluator = COCOEvaluator(dataset.class_names, operating_threshold=operating_threshold)
    evaluator.reset()
    found: list[Results] = []
    records: list[FrameRecord] = []
    pending = []
    timings: list[float] = []
    pdfa = PdFaMetric()
    for results in detect_sequences(predictor, dataset, max_frames=max_frames, progress=progress):
        record = results.record
        timings.append(results.extra.get("seconds", 0.0))
        found.append(results)
        records.append(record)
        pending.append(results)  # `COCOEvaluator.process` reads `to_coco`: no torch needed
        if on_results is not None:
            on_results(results)
        if record.mask is not None:
            gt_mask = cv2.imread(str(record.mask), cv2.IMREAD_GRAYSCALE)
            if gt_mask is None:
                raise InputError("cannot read the target mask image", path=record.mask)
            pdfa.update_boxes(results.boxes, results.scores, gt_mask, operating_threshold)
        if len(records) == 256:
            evaluator.process(records, pending)
            records, pending = [], []
    if records:
        evaluator.process(records, pending)
    metrics = evaluator.compute()
    metrics["ms_per_frame"] = 1000.0 * sum(timings) / len(timings) if timings else 0.0
    operating = {"operating": float(operating_threshold)}
    metrics["thresholds"] = predictor.thresholds.to_dict() | operating
    if pdfa.n_pixels:
        metrics.update({k: v for k, v in pdfa.compute().items() if k in ("pd", "fa")})
    return metrics, found


def data_classes_for(detector: Any, requested: str | None = None) -> str:
    """The `read_dataset(classes=...)` to score `detector` with: `requested` if given, else the
    detector's own class list when it has several, else `target` (all classes merged: classical
    and single-class detectors are scored class-agnostically, as the papers do)."""
    if requested:
        return requested
    names = as_predictor(detector).detector.names
    return ",".join(names) if len(names) > 1 else "target"


def evaluate_with_breakdown(
    detector: Any,
    dataset: FrameDataset | str | Path,
    **kwargs,
) -> tuple[dict, list[Results]]:
    """`evaluate_detector`, plus `metrics["breakdown"]` (class-agnostic, per class, confusion,
    per sequence attribute; `mistd.evaluation.breakdown`) where the data has several classes or
    per-sequence attributes. A multi-class model on one-class data (Anti-UAV, DAUB) is scored
    class-agnostically: the predictor merges its classes (`Predictor.merges_for`)."""
    from mistd.evaluation.breakdown import breakdown

    if isinstance(dataset, str | Path):
        from mistd.data.readers import read_dataset

        dataset = read_dataset(dataset)
    elif not isinstance(dataset, FrameDataset):
        raise InputError(
            f"expected a FrameDataset or the path of a data set, got {type(dataset).__name__}"
        )
    predictor = as_predictor(detector, kwargs.pop("stream", True))
    merged = predictor.merge_classes
    if predictor.merges_for(dataset.class_names):
        predictor.set_merge_classes(True)
    try:
        metrics, found = evaluate_detector(predictor, dataset, **kwargs)
    finally:
        predictor.set_merge_classes(merged)
    if len(dataset.class_names) > 1 or any(s.attributes for s in dataset.sequences):
        metrics["breakdown"] = breakdown(
            dataset,
            [r.record for r in found],
            [r.to_detections() for r in found],
            metrics["thresholds"]["operating"],
        )
    return metrics, found


def predict_sampled(
    predictor: Predictor, dataset: FrameDataset, limit: int, *, batch: int = 8
) -> list[Results]:
    """Clip-mode `Results` of at most `limit` key frames spread evenly over `dataset` (0 = all),
    each with its own causal window (`Predictor.predict_clips`), classes merged where the data
    is one-class (`Predictor.merges_for`); `results.record` is the key frame's record."""
    from mistd.data.clips import ClipSampler

    clips = ClipSampler(
        dataset, num_frames=predictor.num_frames, frame_stride=predictor.frame_stride
    )
    n = len(clips)
    indices = np.linspace(0, n - 1, limit).round().astype(int) if 0 < limit < n else range(n)
    indices = list(dict.fromkeys(int(i) for i in indices))
    merged = predictor.merge_classes
    if predictor.merges_for(dataset.class_names):
        predictor.set_merge_classes(True)
    try:
        return predictor.predict_clips([clips[i] for i in indices], batch)
    finally:
        predictor.set_merge_classes(merged)


def evaluate_sampled(
    detector: Any,
    dataset: FrameDataset,
    limit: int = 0,
    *,
    batch: int = 8,
    operating_threshold: float | None = None,
) -> dict:
    """Official metrics on at most `limit` key frames spread evenly over `dataset` (0 = all): the
    periodic evaluation of training. A sample (`0 < limit <` the data's frames) is scored in clip
    mode, each key frame with its own causal window, in batches (`Predictor.predict_clips`: its
    frames do not come in order, and streaming every frame would cost more than the steps
    between); every frame (`limit` 0 or at least the data's frames) goes through the one
    streaming loop (`evaluate_with_breakdown`). Adds `breakdown` (see `evaluate_with_breakdown`)
    where the data has several classes or sequence attributes."""
    from mistd.evaluation.breakdown import breakdown

    predictor = as_predictor(detector)
    if operating_threshold is None:
        operating_threshold = predictor.thresholds.operating
    if not 0 < limit < dataset.num_frames:
        metrics, _ = evaluate_with_breakdown(
            predictor, dataset, progress=False, operating_threshold=operating_threshold
        )
        return metrics

    found = predict_sampled(predictor, dataset, limit, batch=batch)
    evaluator = COCOEvaluator(dataset.class_names, operating_threshold=operating_threshold)
    records = [r.record for r in found]
    detections = [r.to_detections() for r in found]
    evaluator.process(records, detections)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        metrics = evaluator.compute()
    if len(dataset.class_names) > 1 or any(s.attributes for s in dataset.sequences):
        metrics["breakdown"] = breakdown(dataset, records, detections, operating_threshold)
    return metrics
