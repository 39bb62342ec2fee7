"""CLI command: `mistd detect` (run a detector on a video, an image folder or a data set)."""

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

DETECT_HELP = """Run a detector on a video, image, image folder, data set, webcam or stream.

\b
Examples:
  mistd detect --weights yolox-ir-s video.mp4
  mistd detect --weights model.onnx frames/
  mistd detect --model tophat video.avi rule.k=5 overlay.mask=mask.png
  mistd detect --weights best.pt ../DAUB/coco_val_DAUB.txt --input-size 512x640
  mistd detect --model temporal 0                      # webcam 0 (or rtsp://... )

Trailing key=value settings are a classical --model's config keys, as in `mistd eval`.
Writes under <out>/<name> (default runs/detect/<model>, auto-incremented):
detections.json (COCO results; image ids = the data set's COCO ids, else 1..N in frame order),
detections.csv (frame,sequence,x1,y1,x2,y2,score,label,class_name; frames 1-based, as in
every file mistd writes) and one
annotated video per sequence (<sequence>.mp4: detections in green, ground truth, when the
source has any, in magenta). All of them hold the boxes at or above the display threshold
(--display-threshold, default: the model's); --save-all also writes every box above 0.001 to the
json (for `mistd eval-dets`).
Trained models run at the frame's own size (padded to a multiple of 32) unless --input-size,
and stream (each frame's features are computed once and cached over the window; detections
equal clip mode's). --maps (CHAL, torch backend) writes maps/<sequence>/<frame>.png
(000000.png, ...) and maps/<sequence>.mp4 panels: input with boxes | predicted background |
anomaly | gate, each map with its colour bar.
--backend onnxruntime first exports the two streaming graphs (mistd export) to a temporary folder.
"""


def register(app: typer.Typer) -> None:
    """Add `detect` to `app`."""

    @app.command("detect", help=DETECT_HELP)
    def detect(
        source: str = typer.Argument(
            ..., help="Video, image, image folder, data set, webcam index or stream URL."
        ),
        settings: list[str] = typer.Argument(
            None, help="Classical --model config keys, key=value (e.g. rule.k=5)."
        ),
        model: str | None = typer.Option(None, "--model", help="Classical detector name."),
        weights: str | None = typer.Option(
            None, "--weights", help="Trained weights: shipped name, checkpoint, .pth or .onnx."
        ),
        out: Path = typer.Option(Path("runs/detect"), "--out", help="Output parent folder."),
        name: str | None = typer.Option(None, "--name", help="Run name (default: the model)."),
        display_threshold: float | None = typer.Option(
            None,
            "--display-threshold",
            help="Boxes written and drawn from this score (default: the model's display "
            "threshold).",
        ),
        old_threshold: float | None = OLD_SCORE_THRESHOLD,
        save_all: bool = typer.Option(
            False, "--save-all", help="Also write every box above 0.001 to detections.json."
        ),
        root: str | None = typer.Option(None, "--root", help="Remap image paths under this root."),
        video: bool = typer.Option(True, "--video/--no-video", help="Write annotated videos."),
        fps: float | None = typer.Option(None, "--fps", help="Video fps (default: source or 25)."),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after N frames."),
        device: str = typer.Option("cpu", "--device", help="Device for --weights models."),
        input_size: str | None = typer.Option(
            None,
            "--input-size",
            help="Trained models: HxW, 'native' (the frame size padded to x32; default) or "
            "'trained' (the size it was trained at).",
        ),
        stream: bool = typer.Option(
            True,
            "--stream/--no-stream",
            help="--weights: stream (each frame through the backbone once; same detections).",
        ),
        backend: str = typer.Option(
            "torch", "--backend", help="--weights streaming backend: torch or onnxruntime."
        ),
        precision: str = PRECISION,
        maps: bool = typer.Option(
            False, "--maps", help="CHAL: also write map panels (PNGs + video) under maps/."
        ),
        compile_model: bool = COMPILE,
        frame_check: str = FRAME_CHECK,
        threads: int | None = THREADS,
        confirm_tracks: bool = typer.Option(
            False,
            "--confirm-tracks",
            help="Re-score detections by an online tracker: off confirmed tracks x0.1 "
            "(mistd.tracking.confirm).",
        ),
    ) -> None:
        from mistd.commands.evaluate import check_options, echo_warnings, write_classical_config
        from mistd.errors import check_range
        from mistd.inference.outputs import write_detections
        from mistd.inference.predictor import open_predictor
        from mistd.io import increment_path

        display_threshold = old_option(display_threshold, old_threshold, "--display-threshold")
        check_options(display_threshold, max_frames, "--display-threshold")
        check_range("--fps", fps, "(0, 1000]") if fps is not None else None
        predictor, default_name = open_predictor(
            model,
            weights,
            settings,
            device=device,
            input_size=input_size,
            stream=stream,
            backend=backend,
            precision=precision,
            maps=maps,
            frame_check=frame_check,
            threads=threads,
            compile=compile_model,
            confirm_tracks=confirm_tracks,
            display_threshold=display_threshold,
        )
        if fps is None:
            fps = source_fps(source)
        out_dir = increment_path(out, name or default_name)
        write_classical_config(out_dir, model, settings)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = write_detections(
                predictor,
                source,
                out_dir,
                fps=fps,
                video=video,
                save_all=save_all,
                max_frames=max_frames,
                maps=maps,
                root=root,
            )
        echo_warnings(caught)
        threshold = predictor.thresholds.display
        extra = f", {summary.written} in the json (>= 0.001)" if save_all else ""
        typer.echo(
            f"{summary.frames} frames, {summary.shown} detections at score >= {threshold}{extra}"
        )
        typer.echo(f"detections: {summary.json_path}")
        typer.echo(f"csv:        {summary.csv_path}")
        for path in summary.videos + summary.map_videos:
            typer.echo(f"video:      {path}")


def source_fps(source: str, default: float = 25.0) -> float:
    """The frame rate of a video file `source`, else `default`."""
    from mistd.data.video import VIDEO_SUFFIXES, video_info

    path = Path(source)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return float(video_info(path).fps or default)
    return default
