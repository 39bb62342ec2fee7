"""CLI commands: `mistd track` (detect + track a video or data set) and `mistd eval-tracks`."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from mistd.commands.options import (
    COMPILE,
    FRAME_CHECK,
    OLD_SCORE_THRESHOLD,
    PRECISION,
    THREADS,
    old_option,
)
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
            None, "--split", help="Old name of --select SPLIT.", hidden=True
        ),
        sequences: int | None = typer.Option(
            None, "--sequences", help="Only N evenly spaced sequences (after --select)."
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
            help="Trained models: HxW, 'native' (the frame size padded to x32; default) or "
            "'trained', as `mistd eval`.",
        ),
        frame_check: str = FRAME_CHECK,
        precision: str = PRECISION,
        compile_model: bool = COMPILE,
        threads: int | None = THREADS,
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
        operating_threshold: float | None = typer.Option(
            None,
            "--operating-threshold",
            help="Operating point of the box P/R/F1 (default: the model's operating threshold).",
        ),
        old_threshold: float | None = OLD_SCORE_THRESHOLD,
        track_metrics: bool = typer.Option(
            True,
            "--track-metrics/--no-track-metrics",
            help="On labelled sources, score HOTA / MOTA / IDF1 (needs TrackEval).",
        ),
    ) -> None:
        import numpy as np

        from mistd.config import to_dict
        from mistd.data.readers import read_dataset
        from mistd.data.selection import select_sequences
        from mistd.inference.predictor import open_predictor
        from mistd.io import increment_path, write_json_atomic
        from mistd.track import score_tracks, track_dataset, write_tracks

        operating_threshold = old_option(
            operating_threshold, old_threshold, "--operating-threshold"
        )
        check_options(
            ("--fps", fps, "(0, 1000]"),
            ("--sequences", sequences, ">= 1"),
            ("--max-frames", max_frames, ">= 1"),
            ("--unconfirmed-weight", unconfirmed_weight, "[0, 1]"),
            ("--operating-threshold", operating_threshold, "[0, 1]"),
        )
        predictor, default_name = open_predictor(
            model,
            weights,
            device=device,
            input_size=input_size,
            stream=stream,
            precision=precision,
            compile=compile_model,
            frame_check=frame_check,
            threads=threads,
            keep_all=True,
        )
        config = predictor.tracker_config(list(overrides or []))
        if split is not None:  # the old spelling of --select SPLIT
            if select is not None:
                raise InputError("give --select only (--split is its old name)")
            typer.echo(
                "note: --split is now --select (a split, names or a file of names)", err=True
            )
            select = split
        dataset = read_dataset(source, root=root, select=select)
        dataset = select_sequences(dataset, source, None, sequences, merge_classes)
        if predictor.merges_for(dataset.class_names):
            # class-agnostic before the tracker, so that one target's boxes of two classes are
            # one detection to track, not two, and match the one-class ground truth
            predictor.set_merge_classes(True)
        if operating_threshold is None:
            operating_threshold = predictor.thresholds.operating
        if fps is None:
            from mistd.commands.detect import source_fps

            fps = source_fps(source)
        labelled = any(r.num_targets for r in dataset.frames())
        if labelled and track_metrics:
            from mistd.tracking.metrics import require_trackeval

            require_trackeval()  # before the detector runs, not after
        out_dir = increment_path(out, name or default_name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = track_dataset(
                predictor,
                dataset,
                config,
                out_dir,
                unconfirmed_weight=unconfirmed_weight,
                operating_threshold=operating_threshold,
                video=video,
                fps=fps,
                max_frames=max_frames,
            )
        confirmed_metrics, raw_metrics = run.confirmed_metrics, run.raw_metrics
        paths = write_tracks(run, config, out_dir)
        n_tracks = sum(len(np.unique(r[:, 1])) for r in run.tracks.values())
        typer.echo(f"{len(dataset.sequences)} sequences, {n_tracks} confirmed tracks")
        typer.echo(f"tracks: {paths['mot']} (MOT txt), {paths['json']}, {paths['csv']}")
        for path in run.videos:
            typer.echo(f"video:  {path}")
        if not labelled:
            return
        seen, result = score_tracks(run, dataset, out_dir, max_frames, trackeval=track_metrics)
        table = report_track_metrics(result)
        boxes = {
            "raw": {k: raw_metrics.get(k) for k in ("mAP50", "f1", "op_f1")},
            "track_confirmed": {k: confirmed_metrics.get(k) for k in ("mAP50", "f1", "op_f1")},
        }
        typer.echo(
            "boxes   mAP50 / F1 / F1@{thr}:  raw {r[mAP50]:.4f} / {r[f1]:.4f} / {r[op_f1]:.4f}   "
            "track-confirmed {c[mAP50]:.4f} / {c[f1]:.4f} / {c[op_f1]:.4f}".format(
                thr=operating_threshold, r=boxes["raw"], c=boxes["track_confirmed"]
            )
        )
        for item in caught:
            typer.echo(f"warning: {item.message}", err=True)
        metrics = {
            "model": default_name,
            "source": str(source),
            "select": select,
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
