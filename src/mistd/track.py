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
        tracks: the same as `[R, 7]` float64 arrays (filled by `write_tracks`).
        videos: the annotated videos written.
        raw_metrics, confirmed_metrics: box metrics of the detections before and after track
            confirmation (`COCOEvaluator.compute()` dicts; empty without ground truth).
    """

    rows: dict[str, list[list[float]]] = field(default_factory=dict)
    tracks: dict = field(default_factory=dict)
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
    operating_threshold: float | None = None,
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
    raw_eval = COCOEvaluator(dataset.class_names, operating_threshold=operating_threshold or 0.5)
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
                operating_threshold=operating_threshold,
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


def write_tracks(run: TrackRun, config: TrackerConfig, out_dir: str | Path) -> dict[str, Path]:
    """Write `run`'s tracks under `out_dir`: `mot/<sequence>.txt`, `tracks.json`, `tracks.csv`
    and the tracker settings `tracker.yaml`. Returns the paths (`mot`, `json`, `csv`, `yaml`)."""
    import numpy as np
    import yaml

    from mistd.config import to_dict
    from mistd.data.video import sequence_file_name
    from mistd.io import write_text_atomic
    from mistd.tracking.trackfile import write_mot, write_track_csv, write_tracks_json

    out_dir = Path(out_dir)
    run.tracks = {k: np.asarray(v, np.float64).reshape(-1, 7) for k, v in run.rows.items()}
    for sequence, rows in run.tracks.items():
        write_mot(out_dir / "mot" / f"{sequence_file_name(sequence)}.txt", rows)
    return {
        "mot": out_dir / "mot",
        "json": write_tracks_json(out_dir / "tracks.json", run.tracks),
        "csv": write_track_csv(out_dir / "tracks.csv", run.tracks),
        "yaml": write_text_atomic(out_dir / "tracker.yaml", yaml.safe_dump(to_dict(config))),
    }


def score_tracks(
    run: TrackRun,
    dataset: FrameDataset,
    out_dir: str | Path,
    max_frames: int | None = None,
    trackeval: bool = True,
) -> tuple[dict[str, int], dict]:
    """Score `run`'s tracks (after `write_tracks`) against the ground-truth tracks of `dataset`
    (written to `gt/<sequence>.txt`): only the frames that were run (`max_frames`). Returns
    `(frames scored per sequence, mistd.tracking.metrics.evaluate_tracks' result)`."""
    from mistd.data.video import sequence_file_name
    from mistd.tracking.metrics import evaluate_tracks, gt_tracks_from_dataset
    from mistd.tracking.trackfile import write_mot

    gt, num_frames = gt_tracks_from_dataset(dataset)
    seen = dict(num_frames)
    if max_frames is not None:
        remaining, seen = max_frames, {}
        for sequence in dataset.sequences:
            if remaining <= 0:
                break
            seen[sequence.name] = min(len(sequence.frames), remaining)
            remaining -= seen[sequence.name]
        gt = {s: g[g[:, 0] <= seen[s]] for s, g in gt.items() if s in seen}
    for sequence in seen:
        write_mot(Path(out_dir) / "gt" / f"{sequence_file_name(sequence)}.txt", gt[sequence])
    result = evaluate_tracks(gt, {s: run.tracks[s] for s in seen}, seen, trackeval=trackeval)
    return seen, result
