"""What `mistd track` runs, as a library function: `track_dataset(predictor, dataset, config, out)`.

The predictor gets a track-confirmation stage (`mistd.tracking.confirm.TrackConfirmation`, its
tracker configured by `config`); every frame's confirmed tracks become MOT rows (frames 1-based,
as the MOT format defines them), the detections before and after confirmation are scored
(official protocol), and one video per sequence shows the tracks (`#id class score`) and the
ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mistd.evaluation.coco import COCOEvaluator
from mistd.evaluation.runner import evaluate_detector
from mistd.inference.predictor import Predictor
from mistd.inference.results import Results
from mistd.structures import FrameDataset
from mistd.tracking.confirm import TrackConfirmation
from mistd.tracking.tracker import TrackerConfig


@dataclass
class TrackRun:
    """What `track_dataset` produced.

    Attributes:
        rows: per sequence, MOT rows `[frame (1-based), id, x, y, w, h, score]`.
        videos: the annotated videos written.
        raw_metrics, confirmed_metrics: box metrics of the detections before and after track
            confirmation (`COCOEvaluator.compute()` dicts; empty without ground truth).
    """

    rows: dict[str, list[list[float]]] = field(default_factory=dict)
    videos: list[Path] = field(default_factory=list)
    raw_metrics: dict = field(default_factory=dict)
    confirmed_metrics: dict = field(default_factory=dict)


def track_dataset(
    predictor: Predictor,
    dataset: FrameDataset,
    config: TrackerConfig,
    out_dir: str | Path,
    *,
    unconfirmed_weight: float = 0.1,
    op_threshold: float | None = None,
    video: bool = True,
    fps: float = 25.0,
    max_frames: int | None = None,
) -> TrackRun:
    """Detect and track every sequence of `dataset` (see module docstring)."""
    import contextlib

    from mistd.data.video import SequenceVideos
    from mistd.tracking.draw import draw_tracks
    from mistd.viz.overlay import overlay

    stage = TrackConfirmation(config, unconfirmed_weight)
    predictor.add_stage(stage)
    run = TrackRun(rows={s.name: [] for s in dataset.sequences})
    labelled = any(r.num_targets for r in dataset.frames())
    raw_eval = COCOEvaluator(dataset.class_names, op_threshold=op_threshold or 0.5)
    raw_eval.reset()
    pending: list[tuple] = []

    with contextlib.ExitStack() as stack:
        videos = stack.enter_context(SequenceVideos(out_dir, fps)) if video else None

        def on_results(results: Results) -> None:
            record = results.record
            if labelled:
                pending.append((record, results.extra["raw"]))
                if len(pending) == 256:
                    raw_eval.process([p[0] for p in pending], [p[1] for p in pending])
                    pending.clear()
            for t in results.extra["tracks"]:
                x1, y1, x2, y2 = t.box
                run.rows[results.sequence].append(
                    [results.frame_index + 1, t.track_id, x1, y1, x2 - x1, y2 - y1, t.score]
                )
            if videos is not None:
                image = overlay(results.frame, gt_boxes=record.boxes)
                tracks = results.extra["tracks"]
                videos.write(results.sequence, draw_tracks(image, tracks, results.names))

        try:
            run.confirmed_metrics, _ = evaluate_detector(
                predictor,
                dataset,
                max_frames=max_frames,
                op_threshold=op_threshold,
                on_results=on_results,
            )
        finally:
            predictor.stages.remove(stage)
        if videos is not None:
            run.videos = list(videos.videos)
    if labelled:
        if pending:
            raw_eval.process([p[0] for p in pending], [p[1] for p in pending])
        run.raw_metrics = raw_eval.compute()
    return run
