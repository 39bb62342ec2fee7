"""CLI commands: `mistd eval-dets` (score a COCO result file) and `mistd eval` (end to end).

Both follow the official protocol (docs/design.md §5, `mistd.evaluation.coco`). `eval-dets` scores a
result file as given: the official code applies class-aware NMS (IoU 0.65) to the model outputs
BEFORE writing results, so a file written by that code (or by `mistd eval`/`mistd detect`) is
already suppressed; `eval-dets` only drops scores below 0.001. `eval` runs a detector (whose
`detect` applies its own NMS) over a data set and scores it.
"""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path

import typer

from mistd.errors import InputError

EVAL_DETS_HELP = """Score a COCO result file against COCO ground truth (official mAP50/P/R/F1).

\b
Examples:
  mistd eval-dets --gt instances_test.json --dets results.json
  mistd eval-dets --gt gt.json --dets dets.json --score-threshold 0.5 --json m.json --plot pr.png

The result file is scored as given (no NMS; scores < 0.001 dropped). The operating point
P/R/F1@thr uses greedy IoU >= 0.5 matching per image at --score-threshold.
"""

EVAL_HELP = """Run a detector over a data set and score it (official protocol).

\b
Examples:
  mistd eval --model tophat --data data/synth/medium/instances.json
  mistd eval --model tophat --data video.avi kernel_sizes=[5,9] rule.k=5 overlay.enabled=false
  mistd eval --model temporal --data ../DAUB/coco_val_DAUB.txt --root ../DAUB --json m.json
  mistd eval --weights runs/train/exp/best.pt --data data/synth/medium

Trailing key=value settings are a classical --model's config keys (bare or model.-prefixed;
see `mistd.classical.CLASSICAL_CONFIGS`: kernel_sizes, smooth_sigma, rule.k, rule.margin,
rule.max_detections, overlay.enabled, overlay.mask=mask.png, ...).
Writes metrics.json, pr_curve.png, detections.json (COCO results), ground_truth.json (COCO,
so `mistd eval-dets` reproduces the numbers) and, for a classical --model, its resolved
config.yaml under runs/eval/<name>.
"""


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    return console


def print_metrics(metrics: dict, title: str = "Detection metrics (official protocol)") -> None:
    """Print the metrics table (all frames + one row per sequence) with rich."""
    from mistd.evaluation.coco import metrics_table

    _console().print(metrics_table(metrics, title))


def echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print caught warnings as one `warning: ...` line each on stderr."""
    for item in caught:
        typer.echo(f"warning: {item.message}", err=True)


def check_options(score_threshold: float | None = None, max_frames: int | None = None) -> None:
    """InputError for a `--score-threshold` outside [0, 1] (NaN included) or `--max-frames` < 1."""
    if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
        raise InputError(f"--score-threshold must be a number in [0, 1], got {score_threshold}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {max_frames}")


def warn_if_downscaled(detector, dataset) -> None:
    """Warn (stderr) when frames are much larger than a trained model's input: they are shrunk
    to it, and a 2-20 px target shrinks with them, often to nothing."""
    # A streaming wrapper keeps the clip detector as `.detector`.
    input_size = getattr(getattr(detector, "detector", detector), "input_size", None)
    frame = first_frame_size(dataset)
    if input_size is None or frame is None:
        return
    height, width = frame
    scale = min(input_size[0] / height, input_size[1] / width)
    if scale < 0.5:
        typer.echo(
            f"warning: frames are {width}x{height} but the model input is "
            f"{input_size[1]}x{input_size[0]}: frames are shrunk {1 / scale:.1f}x and small "
            "targets shrink with them. Use weights trained at a model.input_size near the "
            "frame size, run this one at the frame size (--input-size native), or crop the "
            "frames to the region of interest.",
            err=True,
        )


def first_frame_size(dataset) -> tuple[int, int] | None:
    """`(height, width)` of the data set's first frame (read if the index does not say)."""
    first = next(iter(dataset.frames()), None)
    if first is None:
        return None
    if first.height is None or first.width is None:
        from mistd.data.readers.frames import load_frame

        return tuple(load_frame(first)[0].shape[:2])
    return first.height, first.width


def set_input_size(detector, size: str | None, dataset) -> None:
    """`--input-size`: run a learned (fully convolutional) model at `HxW`, or at `native` (the
    first frame's size rounded up to a multiple of 32), instead of its trained input size. Small
    targets keep their pixel size, as in training, when frames are larger than that input."""
    if size is None:
        return
    inner = getattr(detector, "detector", detector)
    if not hasattr(inner, "input_size") or not hasattr(inner, "model"):
        raise InputError("--input-size applies to learned models (--weights)")
    if size == "native":
        frame = first_frame_size(dataset)
        if frame is None:
            return
        height, width = (32 * -(-v // 32) for v in frame)
    else:
        try:
            height, width = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise InputError(f"--input-size: expected HxW or native, got '{size}'") from None
        if height <= 0 or width <= 0 or height % 32 or width % 32:
            raise InputError(f"--input-size: H and W must be positive multiples of 32, got {size}")
    inner.input_size = (height, width)


def classical_settings(items: list[str] | None) -> dict:
    """Trailing `key=value` settings of a classical detector -> nested dict. Keys are its config
    keys (`mistd.classical.CLASSICAL_CONFIGS`), bare or `model.`-prefixed as in `mistd train`:
    `kernel_sizes=[5,9]`, `model.rule.k=5`, `overlay.enabled=false`."""
    from mistd.config import parse_dotted

    parsed = parse_dotted(list(items or []))
    nested = parsed.pop("model", {})
    if not isinstance(nested, dict):
        raise InputError("'model=...' is not a setting: give model.<key>=value (model.rule.k=5)")

    def merge(into: dict, items: dict, where: str) -> None:
        for key, value in items.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value, f"{where}{key}.")
            elif key in into:
                raise InputError(
                    f"setting '{where}{key}' given both bare and as 'model.{where}{key}'"
                )
            else:
                into[key] = value

    merge(parsed, nested, "")
    return parsed


def write_classical_config(out_dir: Path, model: str | None, settings: list[str] | None) -> None:
    """Write a classical `--model`'s resolved config (defaults + settings) to config.yaml."""
    if model is None:
        return
    from mistd.classical import classical_config
    from mistd.config import dump_yaml
    from mistd.io import write_text_atomic

    config = classical_config(model, classical_settings(settings))
    write_text_atomic(out_dir / "config.yaml", f"model: {model}\n" + dump_yaml(config))


def resolve_detector(
    model: str | None,
    weights: str | None,
    device: str = "cpu",
    settings: list[str] | None = None,
):
    """The detector for `--model NAME` or `--weights W` (exactly one). Returns (detector, name).

    `settings`: trailing `key=value` config keys of a classical `--model` (`classical_settings`);
    unknown keys fail with a suggestion.
    """
    if (model is None) == (weights is None):
        raise InputError("give exactly one of --model NAME or --weights FILE")
    if model is not None:
        from mistd.classical import CLASSICAL, build_classical

        if model not in CLASSICAL:
            close = difflib.get_close_matches(model, list(CLASSICAL), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(
                f"unknown model '{model}' (choose from {', '.join(sorted(CLASSICAL))}{hint}); "
                "for trained weights use --weights"
            )
        try:
            return build_classical(model, classical_settings(settings)), model
        except ValueError as exc:  # a constructor's range check (e.g. an even kernel size)
            raise InputError(f"{model} settings: {exc}") from None
    if settings:
        raise InputError(
            f"key=value settings ({' '.join(settings)}) apply to classical --model detectors; "
            "trained --weights keep the config they were trained with"
        )
    assert weights is not None
    if Path(weights).suffix == ".onnx":
        import torch

        from mistd.inference.onnx_backend import OnnxFileDetector

        return OnnxFileDetector(weights, threads=torch.get_num_threads()), Path(weights).stem
    try:
        from mistd.inference.detector import load_detector
    except ImportError as exc:
        raise InputError(
            f"--weights needs mistd.weights.load_detector, which is not available "
            f"in this build ({exc})",
            path=weights,
        ) from None
    try:
        detector = load_detector(weights, device=device)
    except FileNotFoundError as exc:
        raise InputError(f"weights not found ({exc})", path=weights) from None
    return detector, Path(weights).stem


def register(app: typer.Typer) -> None:
    """Add `eval-dets` and `eval` to `app`."""

    @app.command("eval-dets", help=EVAL_DETS_HELP)
    def eval_dets(
        gt: Path = typer.Option(..., "--gt", help="COCO ground-truth json (all frames)."),
        dets: Path = typer.Option(..., "--dets", help="COCO result json (list of detections)."),
        score_threshold: float = typer.Option(
            0.5, "--score-threshold", help="Score threshold of the operating-point P/R/F1."
        ),
        json_out: Path | None = typer.Option(None, "--json", help="Write the metrics here."),
        plot: Path | None = typer.Option(None, "--plot", help="Write the PR curve PNG here."),
    ) -> None:
        from mistd.evaluation.coco import evaluate_coco_files
        from mistd.io import write_json_atomic

        check_options(score_threshold)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics, curve = evaluate_coco_files(gt, dets, score_threshold=score_threshold)
        print_metrics(metrics)
        echo_warnings(caught)
        if json_out is not None:
            write_json_atomic(json_out, metrics)
            typer.echo(f"metrics: {json_out}")
        if plot is not None:
            from mistd.viz.plots import plot_pr_curve

            plot_pr_curve({dets.stem: (curve.recall, curve.precision)}, plot)
            typer.echo(f"PR curve: {plot}")

    @app.command("eval", help=EVAL_HELP)
    def eval_command(
        settings: list[str] = typer.Argument(
            None, help="Classical --model config keys, key=value (e.g. rule.k=5)."
        ),
        data: str = typer.Option(
            ..., "--data", help="Data set (any path `mistd data info` reads)."
        ),
        model: str | None = typer.Option(None, "--model", help="Classical detector name."),
        weights: str | None = typer.Option(None, "--weights", help="Trained weights file."),
        root: str | None = typer.Option(None, "--root", help="Remap image paths under this root."),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the metrics here."),
        score_threshold: float = typer.Option(
            0.5, "--score-threshold", help="Score threshold of the operating-point P/R/F1."
        ),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after N frames."),
        project: Path = typer.Option(Path("runs/eval"), "--project", help="Output parent folder."),
        name: str | None = typer.Option(None, "--name", help="Run name (default: the model)."),
        device: str = typer.Option("cpu", "--device", help="Device for --weights models."),
        select: str | None = typer.Option(
            None,
            "--select",
            help="Only these sequences: a split of the data's clips.csv (val), comma-separated "
            "names, or a .txt file of names.",
        ),
        classes: str | None = typer.Option(
            None,
            "--classes",
            help="'target' merges all classes (class-agnostic); default: the model's classes "
            "when it has several, else merged.",
        ),
        input_size: str | None = typer.Option(
            None,
            "--input-size",
            help="Run a learned model at HxW or 'native' (the frame size) instead of the size "
            "it was trained at (fully convolutional: targets keep their pixel size).",
        ),
        confirm_tracks: bool = typer.Option(
            False,
            "--confirm-tracks",
            help="Re-score detections by an online tracker: off confirmed tracks x0.1 "
            "(mistd.tracking.confirm).",
        ),
    ) -> None:
        from mistd.data.readers import read_dataset
        from mistd.evaluation.coco import COCOEvaluator
        from mistd.evaluation.runner import data_classes_for, evaluate_with_breakdown
        from mistd.io import increment_path, write_json_atomic
        from mistd.viz.plots import plot_pr_curve

        check_options(score_threshold, max_frames)
        detector, default_name = resolve_detector(model, weights, device, settings)
        dataset = read_dataset(
            data, root=root, select=select, classes=data_classes_for(detector, classes)
        )
        set_input_size(detector, input_size, dataset)
        if confirm_tracks:
            from mistd.commands.track import prepare_detector, tracker_config
            from mistd.tracking.confirm import TrackConfirmedDetector

            # class-agnostic before the tracker (as `mistd track`), so that one target's boxes
            # of two classes are one detection to track, not two
            # streamed when it can (one backbone pass per frame, the model's own window)
            detector = TrackConfirmedDetector.wrap(
                prepare_detector(detector, dataset, stream=weights is not None),
                tracker_config([], detector),
            )
        warn_if_downscaled(detector, dataset)
        evaluator = COCOEvaluator(dataset.class_names, op_threshold=score_threshold)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics, _ = evaluate_with_breakdown(
                detector,
                dataset,
                max_frames=max_frames,
                evaluator=evaluator,
                op_threshold=score_threshold,
            )
        metrics["model"] = default_name
        metrics["data"] = str(data)
        out_dir = increment_path(project, name or default_name)
        write_classical_config(out_dir, model, settings)
        write_json_atomic(out_dir / "metrics.json", metrics)
        evaluator.write_results(out_dir / "detections.json")
        evaluator.write_ground_truth(out_dir / "ground_truth.json")
        curve = evaluator.pr_curve()
        plot_pr_curve({default_name: (curve.recall, curve.precision)}, out_dir / "pr_curve.png")
        print_metrics(metrics, f"{default_name} on {data} ({metrics['ms_per_frame']:.1f} ms/frame)")
        if "breakdown" in metrics:
            from mistd.evaluation.breakdown import breakdown_tables

            for table in breakdown_tables(metrics["breakdown"]):
                _console().print(table)
        if "pd" in metrics:
            typer.echo(
                f"Pd {100 * metrics['pd']:.2f}%  Fa {metrics['fa']:.3e} "
                f"(mask targets; boxes >= {score_threshold} filled, centroid within 3 px)"
            )
        echo_warnings(caught)
        if json_out is not None:
            write_json_atomic(json_out, metrics)
            typer.echo(f"metrics: {json_out}")
        typer.echo(f"results in {out_dir} (metrics.json, pr_curve.png, detections.json)")
