"""CLI command: `mistd detect` (run a detector on a video, an image folder or a data set)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import typer

DETECT_HELP = """Run a detector on a video, an image folder or a data set; write detections.

\b
Examples:
  mistd detect --model tophat video.avi
  mistd detect --model temporal frames/ --score-threshold 0.5
  mistd detect --model tophat video.avi rule.k=5 overlay.mask=mask.png
  mistd detect --weights runs/train/exp/best.pt ../DAUB/coco_val_DAUB.txt

Trailing key=value settings are a classical --model's config keys, as in `mistd eval`.
Writes under <out>/<name> (default runs/detect/<model>, auto-incremented):
detections.json (COCO results, all scores >= 0.001; image ids = the data set's COCO ids, else
1..N in frame order), detections.csv (frame,sequence,x1,y1,x2,y2,score,label for detections with
score >= --score-threshold) and one annotated video per sequence (<sequence>.mp4: detections
>= --score-threshold in green, ground truth, when the source has any, in magenta).
With --weights, models that support it stream (mistd.inference.video_predictor: each frame's
features are computed once and cached over the window; detections equal clip mode's);
--maps (CHAL, torch backend) writes maps/<sequence>/<frame>.png (000000.png, ...) and
maps/<sequence>.mp4 panels: input with boxes | predicted background | anomaly | gate, each map
with its colour bar.
--backend onnxruntime first exports the two streaming graphs (mistd export) to a temporary folder.
"""

CSV_HEADER = ("frame", "sequence", "x1", "y1", "x2", "y2", "score", "label", "class_name")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "video"


def register(app: typer.Typer) -> None:
    """Add `detect` to `app`."""

    @app.command("detect", help=DETECT_HELP)
    def detect(
        source: str = typer.Argument(..., help="Video, image folder or data set annotation file."),
        settings: list[str] = typer.Argument(
            None, help="Classical --model config keys, key=value (e.g. rule.k=5)."
        ),
        model: str | None = typer.Option(None, "--model", help="Classical detector name."),
        weights: str | None = typer.Option(None, "--weights", help="Trained weights file."),
        out: Path = typer.Option(Path("runs/detect"), "--out", help="Output parent folder."),
        name: str | None = typer.Option(None, "--name", help="Run name (default: the model)."),
        score_threshold: float = typer.Option(
            0.3, "--score-threshold", help="Display/CSV threshold (the json keeps >= 0.001)."
        ),
        root: str | None = typer.Option(None, "--root", help="Remap image paths under this root."),
        video: bool = typer.Option(True, "--video/--no-video", help="Write annotated videos."),
        fps: float | None = typer.Option(None, "--fps", help="Video fps (default: source or 25)."),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after N frames."),
        device: str = typer.Option("cpu", "--device", help="Device for --weights models."),
        stream: bool = typer.Option(
            True,
            "--stream/--no-stream",
            help="--weights: stream (each frame through the backbone once; same detections).",
        ),
        backend: str = typer.Option(
            "torch", "--backend", help="--weights streaming backend: torch or onnxruntime."
        ),
        precision: str = typer.Option(
            "fp32", "--precision", help="--weights streaming precision: fp32 or bf16 (opt-in)."
        ),
        maps: bool = typer.Option(
            False, "--maps", help="CHAL: also write map panels (PNGs + video) under maps/."
        ),
        confirm_tracks: bool = typer.Option(
            False,
            "--confirm-tracks",
            help="Re-score detections by an online tracker: off confirmed tracks x0.1 "
            "(mistd.tracking.confirm).",
        ),
    ) -> None:
        import contextlib

        from mistd.commands.evaluate import (
            check_options,
            resolve_detector,
            warn_if_downscaled,
            write_classical_config,
        )
        from mistd.data.readers import read_dataset
        from mistd.data.video import VideoWriter, video_info
        from mistd.errors import check_range
        from mistd.evaluation.coco import MIN_SCORE
        from mistd.evaluation.runner import detect_sequences, detector_class_names
        from mistd.io import increment_path, write_json_atomic, write_text_atomic
        from mistd.viz.overlay import overlay

        check_options(score_threshold, max_frames)
        check_range("--fps", fps, "(0, 1000]") if fps is not None else None
        detector, default_name = resolve_detector(model, weights, device, settings)
        if weights is not None:
            from mistd.inference.video_predictor import streaming_detector

            detector = streaming_detector(detector, stream, backend, precision)
        if confirm_tracks:
            from mistd.commands.track import tracker_config
            from mistd.tracking.confirm import TrackConfirmedDetector

            detector = TrackConfirmedDetector.wrap(detector, tracker_config([], detector))
        dataset = read_dataset(source, root=root)
        warn_if_downscaled(detector, dataset)
        if fps is None:
            fps = 25.0
            if Path(source).is_file() and dataset.format == "video":
                fps = float(video_info(source).fps or 25.0)
        out_dir = increment_path(out, name or default_name)
        write_classical_config(out_dir, model, settings)
        class_names = detector_class_names(detector) or ["target"]
        total = 0
        results: list[dict] = []
        rows: list[tuple] = []
        videos: list[Path] = []
        used_ids: set[int] = set()
        next_id = 1
        map_writer = None
        if maps:
            from mistd.inference.panels import MapPanelWriter

            map_writer = MapPanelWriter(detector, out_dir / "maps", fps)
        with contextlib.ExitStack() as stack, map_writer or contextlib.nullcontext():
            writer, writer_sequence = None, None
            # the learned detector is already streaming (or not: --no-stream), as chosen above
            for clip, dets in detect_sequences(
                detector, dataset, max_frames=max_frames, stream=False
            ):
                record = clip.key
                total += 1
                image_id = record.image_id
                if image_id is None or image_id in used_ids:
                    while next_id in used_ids:
                        next_id += 1
                    image_id = next_id
                used_ids.add(image_id)
                results.extend(r for r in dets.to_coco(image_id) if r["score"] >= MIN_SCORE)
                boxes = dets.boxes.numpy()
                scores = dets.scores.numpy()
                labels = dets.labels.numpy()
                shown = scores >= score_threshold
                for (x1, y1, x2, y2), s, c in zip(
                    boxes[shown], scores[shown], labels[shown], strict=True
                ):
                    rows.append(
                        (
                            record.index,
                            record.sequence,
                            f"{x1:.2f}",
                            f"{y1:.2f}",
                            f"{x2:.2f}",
                            f"{y2:.2f}",
                            f"{s:.4f}",
                            int(c),
                            class_names[c] if 0 <= c < len(class_names) else str(c),
                        )
                    )
                if map_writer is not None:
                    map_writer.write(
                        record,
                        overlay(clip.frames[-1], boxes, scores, record.boxes, score_threshold),
                        dets,
                    )
                if not video:
                    continue
                key_frame = clip.frames[-1]
                if writer is None or writer_sequence != record.sequence:
                    if writer is not None:
                        stack.close()  # finish the previous sequence's video
                    path = out_dir / f"{_safe_name(record.sequence)}.mp4"
                    height, width = key_frame.shape[:2]
                    writer = stack.enter_context(VideoWriter(path, fps, (width, height)))
                    writer_sequence = record.sequence
                    videos.append(path)
                writer.write(
                    overlay(
                        key_frame,
                        boxes,
                        scores,
                        record.boxes,
                        score_threshold=score_threshold,
                        labels=labels,
                        class_names=class_names,
                    )
                )
        json_path = write_json_atomic(out_dir / "detections.json", results, indent=None)
        buffer = io.StringIO()
        csv_writer = csv.writer(buffer, lineterminator="\n")
        csv_writer.writerow(CSV_HEADER)
        csv_writer.writerows(rows)
        csv_path = write_text_atomic(out_dir / "detections.csv", buffer.getvalue())
        typer.echo(
            f"{total} frames, {len(results)} detections (>= {MIN_SCORE}), "
            f"{len(rows)} at score >= {score_threshold}"
        )
        typer.echo(f"detections: {json_path}")
        typer.echo(f"csv:        {csv_path}")
        for path in videos + (map_writer.videos if map_writer is not None else []):
            typer.echo(f"video:      {path}")
