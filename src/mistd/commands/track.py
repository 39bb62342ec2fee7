"""CLI commands: `mistd track` (detect + track a video or data set) and `mistd eval-tracks`."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import typer

from mistd.errors import InputError, check_options

TRACK_HELP = """Detect and track small targets in a video, an image folder or a data set.

\b
Examples:
  mistd track --model temporal video.avi
  mistd track --weights mf-baseline-ir-s anti_uav/4.avi
  mistd track --model tophat data/synth/medium min_hits=2 max_misses=30 cost=nwd

Streams the detector (as `mistd detect`) into the online tracker (mistd.tracking.Tracker:
constant-velocity Kalman, centre gating, ByteTrack two-stage matching; trailing key=value
arguments set TrackerConfig fields). Writes under <out>/<name> (default runs/track/<model>):
mot/<sequence>.txt (MOT challenge: frame,id,x,y,w,h,score,-1,-1,-1; frames 1-based),
tracks.json, tracks.csv (per-track stats), one annotated video per sequence (boxes labelled
#id class score, trails; ground truth in magenta) and tracker.yaml (the settings). When the
source has labels it also writes gt/<sequence>.txt and metrics.json and prints HOTA / MOTA /
IDF1 (TrackEval: without it the command stops before it runs, unless --no-track-metrics), the
Anti-UAV state accuracy (single-target sequences) and box mAP50 / F1 of the detections without
and with track confirmation (--unconfirmed-weight).
"""

EVAL_TRACKS_HELP = """Score track files against ground truth: HOTA, MOTA, IDF1 (TrackEval) and the
Anti-UAV state accuracy (single-target sequences).

\b
Examples:
  mistd eval-tracks --gt runs/track/temporal/gt --tracks runs/track/temporal/mot
  mistd eval-tracks --gt anti_uav/4.avi --tracks runs/track/temporal/mot/4.txt
  mistd eval-tracks --gt drone_ir/ --tracks mot/ --json m.json

--gt is a MOT txt file or a folder of <sequence>.txt files, or any data set `mistd data info`
reads (identities derived from the label boxes, see mistd.tracking.metrics). --tracks is a MOT
txt file (sequence = its file name) or a folder of them; with a data set as --gt, only the
sequences that have a track file are scored.
"""


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "video"


def track_threshold_of(detector) -> float | None:
    """The `track_threshold` of `detector` or of a detector it wraps (`.detector`), if any."""
    while detector is not None:
        value = getattr(type(detector), "track_threshold", None)
        if value is not None:
            return float(value)
        detector = getattr(detector, "detector", None)
    return None


def tracker_config(overrides: list[str], detector=None):
    """TrackerConfig with `key=value` overrides (bare or `tracker.`-prefixed keys). The high and
    birth thresholds default to the detector's `track_threshold` where it has one (learned
    models: 0.3, see `mistd.inference.detector.ClipDetector`), else to the tracker's 0.5."""
    from mistd.config import apply_overrides, parse_dotted
    from mistd.tracking import TrackerConfig

    parsed = parse_dotted(overrides)
    parsed = {**{k: v for k, v in parsed.items() if k != "tracker"}, **parsed.get("tracker", {})}
    base = TrackerConfig()
    threshold = track_threshold_of(detector)
    if threshold is not None:
        base = apply_overrides(base, {"high_threshold": threshold, "birth_threshold": threshold})
    try:
        return apply_overrides(base, parsed)
    except ValueError as exc:
        raise InputError(f"tracker settings: {exc}") from None


def _summary_table(title: str, rows: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    columns = ["HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "SA"]
    table.add_column("sequence")
    for c in columns:
        table.add_column(c, justify="right")
    for name, m in rows.items():
        cells = []
        for c in columns:
            v = m.get(c)
            if v is None:
                cells.append("-")
            elif c == "IDSW":
                cells.append(f"{int(v)}")
            else:
                cells.append(f"{100 * v:.2f}")
        table.add_row(name, *cells, style="bold" if name == "all" else None)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)


def report_track_metrics(result: dict, max_rows: int = 20) -> dict[str, dict]:
    """Print the track metrics table; returns the rows {sequence: {HOTA, ..., SA}}."""
    te = result["trackeval"] or {}
    sa = result["state_accuracy"]
    names = [n for n in (te or sa) if n != "all"]
    rows: dict[str, dict] = {}
    for name in [*names[:max_rows], "all"]:
        row = {k: te.get(name, {}).get(k) for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1")}
        row["IDSW"] = te.get(name, {}).get("IDSW")
        row["SA"] = sa.get(name)
        rows[name] = row
    title = "Track metrics (%)"
    if len(names) > max_rows:
        title += f": first {max_rows} of {len(names)} sequences, then all"
    _summary_table(title, rows)
    if not te:
        typer.echo("HOTA / MOTA / IDF1 not computed (--no-track-metrics)")
    return rows


def register(app: typer.Typer) -> None:
    """Add `track` and `eval-tracks` to `app`."""

    @app.command(
        "track",
        help=TRACK_HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def track(
        source: str = typer.Argument(..., help="Video, image folder or data set."),
        overrides: list[str] = typer.Argument(None, help="TrackerConfig key=value settings."),
        model: str | None = typer.Option(None, "--model", help="Classical detector name."),
        weights: str | None = typer.Option(None, "--weights", help="Trained weights file."),
        out: Path = typer.Option(Path("runs/track"), "--out", help="Output parent folder."),
        name: str | None = typer.Option(None, "--name", help="Run name (default: the model)."),
        root: str | None = typer.Option(None, "--root", help="Remap image paths under this root."),
        split: str | None = typer.Option(
            None, "--split", help="Only sequences of this split (data sets with a split, e.g. val)."
        ),
        sequences: int | None = typer.Option(
            None, "--sequences", help="Only N evenly spaced sequences (after --split)."
        ),
        select: str | None = typer.Option(
            None,
            "--select",
            help="Only these sequences: a split of the data's clips.csv (val), comma-separated "
            "names, or a .txt file of names (as `mistd eval --select`).",
        ),
        input_size: str | None = typer.Option(
            None,
            "--input-size",
            help="Run a learned model at HxW or 'native' (the frame size), as `mistd eval`.",
        ),
        merge_classes: bool = typer.Option(
            True,
            "--merge-classes/--keep-classes",
            help="Score boxes as one class 'target' (the papers' setting; default).",
        ),
        video: bool = typer.Option(True, "--video/--no-video", help="Write annotated videos."),
        fps: float | None = typer.Option(None, "--fps", help="Video fps (default: source or 25)."),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after N frames."),
        device: str = typer.Option("cpu", "--device", help="Device for --weights models."),
        stream: bool = typer.Option(True, "--stream/--no-stream", help="--weights: stream."),
        unconfirmed_weight: float = typer.Option(
            0.1, "--unconfirmed-weight", help="Score factor of detections off confirmed tracks."
        ),
        score_threshold: float = typer.Option(
            0.5, "--score-threshold", help="Operating point of the box P/R/F1."
        ),
        track_metrics: bool = typer.Option(
            True,
            "--track-metrics/--no-track-metrics",
            help="On labelled sources, score HOTA / MOTA / IDF1 (needs TrackEval).",
        ),
    ) -> None:
        import contextlib

        import numpy as np

        from mistd.commands.evaluate import resolve_detector, warn_if_downscaled
        from mistd.config import to_dict
        from mistd.data.readers import read_dataset
        from mistd.data.video import VideoWriter, video_info
        from mistd.evaluation.coco import COCOEvaluator
        from mistd.evaluation.runner import evaluate_detector
        from mistd.io import increment_path, write_json_atomic, write_text_atomic
        from mistd.tracking.confirm import TrackConfirmedDetector
        from mistd.tracking.draw import draw_tracks
        from mistd.tracking.metrics import evaluate_tracks, gt_tracks_from_dataset
        from mistd.tracking.trackfile import write_mot, write_track_csv, write_tracks_json
        from mistd.viz.overlay import overlay

        check_options(
            ("--fps", fps, "(0, 1000]"),
            ("--sequences", sequences, ">= 1"),
            ("--max-frames", max_frames, ">= 1"),
            ("--unconfirmed-weight", unconfirmed_weight, "[0, 1]"),
            ("--score-threshold", score_threshold, "[0, 1]"),
        )
        detector, default_name = resolve_detector(model, weights, device)
        config = tracker_config(list(overrides or []), detector)
        dataset = read_dataset(source, root=root, select=select)
        dataset = select_sequences(dataset, source, split, sequences, merge_classes)
        detector = prepare_detector(
            detector, dataset, input_size, stream=weights is not None and stream
        )
        warn_if_downscaled(detector, dataset)
        if fps is None:
            fps = 25.0
            if Path(source).is_file() and dataset.format == "video":
                fps = float(video_info(source).fps or 25.0)
        labelled = any(r.num_targets for r in dataset.frames())
        if labelled and track_metrics:
            from mistd.tracking.metrics import require_trackeval

            require_trackeval()  # before the detector runs, not after
        out_dir = increment_path(out, name or default_name)
        wrapped = TrackConfirmedDetector.wrap(detector, config, unconfirmed_weight)
        rows: dict[str, list[list[float]]] = {s.name: [] for s in dataset.sequences}
        raw_eval = COCOEvaluator(dataset.class_names, op_threshold=score_threshold)
        raw_eval.reset()
        pending: list[tuple] = []
        videos: list[Path] = []

        with contextlib.ExitStack() as stack:
            state = {"writer": None, "sequence": None}

            def on_frame(clip, detections) -> None:
                record = clip.key
                pending.append((record, wrapped.raw))
                if len(pending) == 256:
                    raw_eval.process([p[0] for p in pending], [p[1] for p in pending])
                    pending.clear()
                for t in wrapped.tracks:
                    x1, y1, x2, y2 = t.box
                    rows[record.sequence].append(
                        [record.index + 1, t.track_id, x1, y1, x2 - x1, y2 - y1, t.score]
                    )
                if not video:
                    return
                key_frame = clip.frames[-1]
                if state["writer"] is None or state["sequence"] != record.sequence:
                    if state["writer"] is not None:
                        stack.close()
                    path = out_dir / f"{_safe_name(record.sequence)}.mp4"
                    height, width = key_frame.shape[:2]
                    state["writer"] = stack.enter_context(VideoWriter(path, fps, (width, height)))
                    state["sequence"] = record.sequence
                    videos.append(path)
                image = overlay(key_frame, gt_boxes=record.boxes)
                state["writer"].write(draw_tracks(image, wrapped.tracks, dataset.class_names))

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                confirmed_metrics, _ = evaluate_detector(
                    wrapped,
                    dataset,
                    max_frames=max_frames,
                    op_threshold=score_threshold,
                    on_frame=on_frame,
                )
        tracks = {k: np.asarray(v, np.float64).reshape(-1, 7) for k, v in rows.items()}
        for seq, seq_rows in tracks.items():
            write_mot(out_dir / "mot" / f"{_safe_name(seq)}.txt", seq_rows)
        json_path = write_tracks_json(out_dir / "tracks.json", tracks)
        csv_path = write_track_csv(out_dir / "tracks.csv", tracks)
        import yaml

        write_text_atomic(out_dir / "tracker.yaml", yaml.safe_dump(to_dict(config)))
        n_tracks = sum(len(np.unique(r[:, 1])) for r in tracks.values())
        typer.echo(f"{len(dataset.sequences)} sequences, {n_tracks} confirmed tracks")
        typer.echo(f"tracks: {out_dir / 'mot'} (MOT txt), {json_path}, {csv_path}")
        for path in videos:
            typer.echo(f"video:  {path}")
        if not labelled:
            return
        if pending:
            raw_eval.process([p[0] for p in pending], [p[1] for p in pending])
        raw_metrics = raw_eval.compute()
        gt, num_frames = gt_tracks_from_dataset(dataset)
        seen = dict(num_frames)
        if max_frames is not None:
            # only the frames that were run are scored
            remaining, seen = max_frames, {}
            for s in dataset.sequences:
                if remaining <= 0:
                    break
                seen[s.name] = min(len(s.frames), remaining)
                remaining -= seen[s.name]
            gt = {s: g[g[:, 0] <= seen[s]] for s, g in gt.items() if s in seen}
        for seq in seen:
            write_mot(out_dir / "gt" / f"{_safe_name(seq)}.txt", gt[seq])
        result = evaluate_tracks(gt, {s: tracks[s] for s in seen}, seen, trackeval=track_metrics)
        table = report_track_metrics(result)
        boxes = {
            "raw": {k: raw_metrics.get(k) for k in ("mAP50", "f1", "op_f1")},
            "track_confirmed": {k: confirmed_metrics.get(k) for k in ("mAP50", "f1", "op_f1")},
        }
        typer.echo(
            "boxes   mAP50 / F1 / F1@{thr}:  raw {r[mAP50]:.4f} / {r[f1]:.4f} / {r[op_f1]:.4f}   "
            "track-confirmed {c[mAP50]:.4f} / {c[f1]:.4f} / {c[op_f1]:.4f}".format(
                thr=score_threshold, r=boxes["raw"], c=boxes["track_confirmed"]
            )
        )
        for item in caught:
            typer.echo(f"warning: {item.message}", err=True)
        metrics = {
            "model": default_name,
            "source": str(source),
            "split": split,
            "sequences": list(seen),
            "frames": sum(seen.values()),
            "tracks": table,
            "trackeval": result["trackeval"],
            "state_accuracy": result["state_accuracy"],
            "boxes": boxes,
            "ms_per_frame": confirmed_metrics.get("ms_per_frame"),
            "tracker": to_dict(config),
            "unconfirmed_weight": unconfirmed_weight,
        }
        write_json_atomic(out_dir / "metrics.json", metrics)
        typer.echo(f"metrics: {out_dir / 'metrics.json'}")

    @app.command("eval-tracks", help=EVAL_TRACKS_HELP)
    def eval_tracks(
        gt: Path = typer.Option(..., "--gt", help="MOT txt / folder, or a data set."),
        tracks: Path = typer.Option(..., "--tracks", help="MOT txt file or folder of them."),
        root: str | None = typer.Option(None, "--root", help="Remap image paths (data sets)."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the metrics here."),
    ) -> None:
        from mistd.io import write_json_atomic
        from mistd.tracking.metrics import evaluate_tracks, gt_tracks_from_dataset
        from mistd.tracking.trackfile import looks_like_mot, read_track_files

        if looks_like_mot(gt):
            gt_rows = read_track_files(gt)
            num_frames = {s: int(r[:, 0].max()) if len(r) else 0 for s, r in gt_rows.items()}
            track_rows = read_track_files(tracks, num_frames)
            if tracks.is_file() and len(gt_rows) > 1 and set(track_rows) <= set(gt_rows):
                # one track file: its sequence alone, not the others as if nothing was tracked
                typer.echo(f"scoring sequence {next(iter(track_rows))} only (one track file)")
                gt_rows = {s: r for s, r in gt_rows.items() if s in track_rows}
                num_frames = {s: num_frames[s] for s in gt_rows}
        else:
            from mistd.data.readers import read_dataset

            gt_rows, num_frames = gt_tracks_from_dataset(read_dataset(gt, root=root))
            track_rows = read_track_files(tracks, num_frames)
            if tracks.is_file() and len(gt_rows) == 1:
                # one track file against a one-sequence data set: pair them whatever the name
                (only,) = gt_rows
                track_rows = {only: next(iter(track_rows.values()))}
            gt_rows = {s: r for s, r in gt_rows.items() if s in track_rows}
            num_frames = {s: num_frames[s] for s in gt_rows}
        unknown = sorted(set(track_rows) - set(gt_rows))
        if unknown:
            raise InputError(
                f"track files for sequences without ground truth: {unknown[:5]}", path=tracks
            )
        result = evaluate_tracks(gt_rows, track_rows, num_frames)
        table = report_track_metrics(result)
        if json_out is not None:
            write_json_atomic(json_out, {"tracks": table, **result})
            typer.echo(f"metrics: {json_out}")


def prepare_detector(detector, dataset, input_size: str | None = None, stream: bool = False):
    """`detector` ready to be tracked and scored on `dataset`: run at `input_size` (`--input-size`,
    learned models), streamed when `stream` (the streaming predictor is built at that size, so
    the size is set first) and, for a multi-class model on one-class (merged) ground truth,
    relabelled class-agnostically (class-agnostic NMS, every box class 0) before the tracker sees
    it, as `mistd eval` scores it; otherwise its class ids 1.. would match no ground-truth
    category."""
    from mistd.commands.evaluate import set_input_size
    from mistd.evaluation.breakdown import class_agnostic
    from mistd.evaluation.runner import detector_class_names
    from mistd.inference.video_predictor import streaming_detector

    set_input_size(detector, input_size, dataset)
    if stream:
        detector = streaming_detector(detector)
    names = detector_class_names(detector)
    if names and len(names) > 1 and len(dataset.class_names) == 1:
        detector = class_agnostic(detector)
    return detector


def select_sequences(
    dataset, source: str, split: str | None, first: int | None, merge_classes: bool = False
):
    """`dataset` restricted to a split (a `clips.csv` beside or in `source` with columns
    clip,...,split, as drone_ir has) and/or to `first` evenly spaced sequences (deterministic:
    indices round(linspace(0, n - 1, first)), so a subset spans a class-sorted list); with
    `merge_classes`, every box becomes class 0 "target"."""
    import csv

    import numpy as np

    from mistd.structures import FrameDataset

    sequences = dataset.sequences
    if split is not None:
        path = Path(source)
        candidates = [
            path / "clips.csv",
            path.parent / "clips.csv",
            path.parent.parent / "clips.csv",
        ]
        clips_csv = next((c for c in candidates if c.is_file()), None)
        if clips_csv is None:
            raise InputError("--split needs a clips.csv (clip,...,split) beside the data", source)
        with clips_csv.open() as f:
            chosen = {row["clip"] for row in csv.DictReader(f) if row.get("split") == split}
        if not chosen:
            raise InputError(f"no clip of split '{split}'", path=clips_csv)
        sequences = [s for s in sequences if s.name in chosen]
        if not sequences:
            raise InputError(
                f"no sequence of split '{split}' in the data set (names: "
                f"{[s.name for s in dataset.sequences[:3]]} ...)",
                path=clips_csv,
            )
    if first is not None and first < len(sequences):
        picks = np.round(np.linspace(0, len(sequences) - 1, max(first, 1))).astype(int)
        sequences = [sequences[i] for i in picks]
    class_names = dataset.class_names
    if merge_classes and len(class_names) > 1:
        for seq in sequences:
            for record in seq.frames:
                record.labels = np.zeros_like(record.labels)
        class_names = ["target"]
    return FrameDataset(sequences, class_names, dataset.source, dataset.format)
