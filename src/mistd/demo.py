"""`mistd demo`: run the detectors on a real clip, write videos, plot and metrics.

The default input is the real thermal clip shipped in the package (`mistd/assets/demo`: a drone
above a tree line, from the val split of the thermal drone set, CC0); `synthetic=True` generates a
synthetic clip instead, `source=` reads any data set or video. Metrics are class-agnostic (the
papers' protocol): every detection counts as "target".

Detectors: the classical ones, and every model shipped inside the package (`mistd/weights/`),
each run by a `Predictor` (trained models streamed, one backbone pass per frame, at the frame's
own size unless `input_size`). For CHAL models the anomaly-map panels (input with boxes |
predicted background | anomaly | gate) are written as a video too.
Kept apart from the CLI so that tests and notebooks can call `run_demo(...)` directly.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from mistd.errors import InputError, check_options
from mistd.inference.predictor import Predictor
from mistd.inference.results import Results
from mistd.structures import FrameDataset

DEMO_CLIP_FRAMES = 200


@dataclass
class DemoResult:
    """What a demo run produced (paths and per-detector metrics)."""

    run_dir: Path
    labelled: bool = False
    metrics: dict[str, dict] = field(default_factory=dict)
    best: str = ""
    video: Path | None = None
    map_videos: list[Path] = field(default_factory=list)
    pr_curve: Path | None = None
    metrics_json: Path | None = None


def demo_clip() -> Path:
    """The folder of the real demo clip shipped in the package (a video-csv data set)."""
    from importlib import resources

    return Path(str(resources.files("mistd") / "assets" / "demo"))


def demo_detectors(
    device: str = "cpu", input_size: str | None = None, frame_check: str | bool | None = None
) -> dict[str, Predictor]:
    """Every detector the demo runs, as class-agnostic `Predictor`s: the classical ones, then
    the shipped models (streaming at `input_size`, `frame_check` as `Predictor` takes it; CHAL
    models keep their maps for the panels)."""
    from mistd.classical import CLASSICAL
    from mistd.weights import read_weights, shipped_weights

    detectors: dict[str, Predictor] = {
        name: Predictor(name, merge_classes=True, keep_all=True) for name in CLASSICAL
    }
    for name in shipped_weights():
        weights = read_weights(name)
        detectors[name] = Predictor(
            weights,
            device=device,
            input_size=input_size,
            frame_check=frame_check,
            merge_classes=True,
            keep_all=True,
            maps=weights.run_config.model_name == "chal",
        )
    return detectors


def _synthetic_clip(out_dir: Path, preset: str, frames: int, size: str, seed: int) -> FrameDataset:
    from mistd.data.readers import read_dataset
    from mistd.data.synth.config import parse_size, preset_config
    from mistd.data.synth.writer import write_synthetic_dataset

    height, width = parse_size(size)
    cfg = preset_config(preset, height=height, width=width, num_frames=frames)
    write_synthetic_dataset(out_dir, cfg, sequences=1, seed=seed)
    return read_dataset(out_dir)


def _write_video(path: Path, results: list[Results], fps: float, threshold: float) -> Path:
    """The frames with detections (green, score >= threshold) and ground truth (magenta)."""
    from mistd.data.video import SequenceVideos

    with SequenceVideos(path.parent, fps) as videos:
        for found in results:
            videos.write(path.stem, found.plot(threshold, gt_boxes=found.record.boxes))
    return path


def run_demo(
    *,
    source: str | None = None,
    synthetic: bool = False,
    preset: str = "medium",
    frames: int = 80,
    size: str = "256x256",
    seed: int = 7,
    out: str | Path = "runs/demo",
    name: str = "exp",
    max_frames: int | None = None,
    display_threshold: float = 0.5,
    device: str = "cpu",
    input_size: str | None = None,
    frame_check: str | bool | None = None,
    echo=print,
) -> DemoResult:
    """Run the demo and return what it wrote (see module docstring)."""
    from mistd.data.readers import read_dataset
    from mistd.evaluation.coco import COCOEvaluator
    from mistd.evaluation.runner import evaluate_detector
    from mistd.io import increment_path, write_json_atomic
    from mistd.viz.plots import plot_pr_curve

    if frames < 5:
        raise InputError(f"--frames must be at least 5, got {frames}")
    check_options(("--max-frames", max_frames, ">= 1"), ("--seed", seed, "[0, 4294967295]"))
    start = time.perf_counter()
    fps = 25.0
    run_dir = increment_path(out, name)
    if synthetic:
        if source is not None:
            raise InputError("give either --source or --synthetic, not both")
        echo(f"generating a synthetic '{preset}' clip ({frames} frames, {size}) ...")
        dataset = _synthetic_clip(run_dir / "data", preset, frames, size, seed)
    else:
        if source is None:
            source = str(demo_clip())
            if max_frames is None:
                # six detectors, CHAL with its map panels: 200 frames keep the demo near a minute
                # on 2 CPU cores; --max-frames 300 runs the whole clip
                max_frames = DEMO_CLIP_FRAMES
            echo(f"real thermal clip shipped with mistd: {source} (first {max_frames} frames)")
        dataset = read_dataset(source, classes="target")
        videos = {r.video for r in dataset.frames() if r.video is not None}
        if videos:
            from mistd.data.video import video_info

            fps = float(video_info(next(iter(videos))).fps or 25.0)
    result = DemoResult(run_dir=run_dir)
    result.labelled = any(record.num_targets for record in dataset.frames())

    all_results: dict[str, list[Results]] = {}
    curves = {}
    for det_name, predictor in demo_detectors(device, input_size, frame_check).items():
        evaluator = COCOEvaluator(dataset.class_names, operating_threshold=display_threshold)
        panels = None
        if predictor.detector.maps:
            from mistd.inference.panels import MapPanelWriter

            panels = MapPanelWriter(run_dir / f"{det_name}-maps", fps)

        def on_results(found: Results, panels=panels) -> None:
            if panels is not None:
                panels.write(found, found.plot(display_threshold, gt_boxes=found.record.boxes))
            found.maps = None  # large: kept only while the panels are written

        with panels or contextlib.nullcontext():
            metrics, found = evaluate_detector(
                predictor,
                dataset,
                evaluator=evaluator,
                max_frames=max_frames,
                progress=True,
                operating_threshold=display_threshold,
                on_results=on_results,
            )
        if panels is not None:
            result.map_videos += panels.videos
        all_results[det_name] = found
        if result.labelled:
            curve = evaluator.pr_curve()
            curves[det_name] = (curve.recall, curve.precision)
        metrics.pop("per_sequence", None)
        result.metrics[det_name] = metrics
        echo(f"  {det_name:24s} {metrics['ms_per_frame']:7.1f} ms/frame")

    result.best = best_detector(result.metrics, result.labelled)
    result.video = _write_video(
        run_dir / f"{result.best}.mp4", all_results[result.best], fps, display_threshold
    )
    if curves:
        ap = {name: m["mAP50"] for name, m in result.metrics.items()}
        result.pr_curve = plot_pr_curve(curves, run_dir / "pr_curve.png", ap=ap)
    result.metrics_json = write_json_atomic(
        run_dir / "metrics.json", {"labelled": result.labelled, "detectors": result.metrics}
    )
    _print_table(result)
    echo(f"\nresults in {run_dir} ({time.perf_counter() - start:.0f} s):")
    why = f", best F1 at score {display_threshold:g}" if result.labelled else ""
    echo(f"  annotated video ({result.best}{why}): {result.video}")
    for path in result.map_videos:
        echo(f"  anomaly-map panels: {path}")
    if result.pr_curve is not None:
        echo(f"  PR curves: {result.pr_curve}")
    echo(f"  metrics:   {result.metrics_json}")
    return result


def best_detector(metrics: dict[str, dict], labelled: bool = True) -> str:
    """The detector whose video the demo writes: the highest F1 at the operating point
    (`op_f1`: what a user sees drawn at the display threshold), ties broken by mAP50, then by
    the best F1 over the PR curve, then by speed (`ms_per_frame`), then by name, so the choice
    never depends on the order the detectors ran in. Without ground truth: the last detector
    (the last shipped model, else the last classical one)."""
    if not metrics:
        raise ValueError("no detector ran")
    if not labelled:
        return list(metrics)[-1]

    def rank(name: str) -> tuple:
        m = metrics[name]
        speed = m.get("ms_per_frame")
        return (
            -m.get("op_f1", 0.0),
            -m.get("mAP50", 0.0),
            -m.get("f1", 0.0),
            speed if speed is not None else float("inf"),
            name,
        )

    return min(metrics, key=rank)


def _print_table(result: DemoResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mistd demo: detectors on the clip (official protocol)")
    table.add_column("detector")
    columns = [("mAP50", "mAP50"), ("precision", "P"), ("recall", "R"), ("f1", "F1")]
    columns += [("op_f1", "F1@0.5"), ("ms_per_frame", "ms/frame")]
    for _, header in columns:
        table.add_column(header, justify="right")
    for det_name, metrics in result.metrics.items():
        cells = []
        for key, _ in columns:
            value = metrics.get(key, float("nan"))
            if key == "ms_per_frame":
                cells.append(f"{value:.1f}")
            else:
                cells.append(f"{100 * value:.2f}" if result.labelled else "-")
        table.add_row(det_name, *cells, style="bold" if det_name == result.best else None)
    Console().print(table)
    if not result.labelled:
        print("(no ground truth in the source: metrics are not available)")
