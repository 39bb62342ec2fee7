"""CLI commands: `mistd eval-dets` (score a COCO result file) and `mistd eval` (end to end).

Both follow the official protocol (docs/design.md §5, `mistd.evaluation.coco`). `eval-dets` scores a
result file as given: the official code applies class-aware NMS (IoU 0.65) to the model outputs
BEFORE writing results, so a file written by that code (or by `mistd eval`/`mistd detect`) is
already suppressed; `eval-dets` only drops scores below 0.001. `eval` runs a detector (whose
`detect` applies its own NMS) over a data set and scores it.
"""

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
from mistd.errors import InputError

EVAL_DETS_HELP = """Score a COCO result file against COCO ground truth (official mAP50/P/R/F1).

\b
Examples:
  mistd eval-dets --gt instances_test.json --dets results.json
  mistd eval-dets --gt gt.json --dets d.json --operating-threshold 0.5 --json m.json --plot pr.png

The result file is scored as given (no NMS; scores < 0.001 dropped). The operating point
P/R/F1@thr uses greedy IoU >= 0.5 matching per image at --operating-threshold; metrics.json also
holds the best F1 over all thresholds (best_f1, best_f1_threshold) and the F1-vs-score curve.
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


def check_options(
    threshold: float | None = None,
    max_frames: int | None = None,
    option: str = "--operating-threshold",
) -> None:
    """InputError for a threshold `option` outside [0, 1] (NaN included) or `--max-frames` < 1."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"{option} must be a number in [0, 1], got {threshold}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {max_frames}")


def write_classical_config(out_dir: Path, model: str | None, settings: list[str] | None) -> None:
    """Write a classical `--model`'s resolved config (defaults + settings) to config.yaml."""
    if model is None:
        return
    from mistd.classical import classical_config, classical_settings
    from mistd.config import dump_yaml
    from mistd.io import write_text_atomic

    config = classical_config(model, classical_settings(settings))
    write_text_atomic(out_dir / "config.yaml", f"model: {model}\n" + dump_yaml(config))


def register(app: typer.Typer) -> None:
    """Add `eval-dets` and `eval` to `app`."""

    @app.command("eval-dets", help=EVAL_DETS_HELP)
    def eval_dets(
        gt: Path = typer.Option(..., "--gt", help="COCO ground-truth json (all frames)."),
        dets: Path = typer.Option(..., "--dets", help="COCO result json (list of detections)."),
        operating_threshold: float | None = typer.Option(
            None,
            "--operating-threshold",
            help="Score threshold of the operating-point P/R/F1 (default 0.5).",
        ),
        old_threshold: float | None = OLD_SCORE_THRESHOLD,
        json_out: Path | None = typer.Option(None, "--json", help="Write the metrics here."),
        plot: Path | None = typer.Option(None, "--plot", help="Write the PR curve PNG here."),
    ) -> None:
        from mistd.evaluation.coco import evaluate_coco_files
        from mistd.io import write_json_atomic

        operating_threshold = old_option(
            operating_threshold, old_threshold, "--operating-threshold"
        )
        operating_threshold = 0.5 if operating_threshold is None else operating_threshold
        check_options(operating_threshold)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics, curve = evaluate_coco_files(gt, dets, operating_threshold=operating_threshold)
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
        operating_threshold: float | None = typer.Option(
            None,
            "--operating-threshold",
            help="Operating point of the P/R/F1 (default: the model's operating threshold).",
        ),
        old_threshold: float | None = OLD_SCORE_THRESHOLD,
        max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after N frames."),
        project: Path = typer.Option(
            Path("runs/eval"),
            "--out",
            "--project",
            help="Output parent folder (--project: old name).",
        ),
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
            help="Trained models: HxW, 'native' (the frame size padded to x32; default: fully "
            "convolutional, targets keep their pixel size) or 'trained' (its training size).",
        ),
        precision: str = PRECISION,
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
        from mistd.data.readers import read_dataset
        from mistd.evaluation.coco import COCOEvaluator
        from mistd.evaluation.runner import data_classes_for, evaluate_with_breakdown
        from mistd.inference.predictor import open_predictor
        from mistd.io import increment_path, write_json_atomic
        from mistd.viz.plots import plot_pr_curve

        operating_threshold = old_option(
            operating_threshold, old_threshold, "--operating-threshold"
        )
        check_options(operating_threshold, max_frames)
        predictor, default_name = open_predictor(
            model,
            weights,
            settings,
            device=device,
            input_size=input_size,
            precision=precision,
            compile=compile_model,
            frame_check=frame_check,
            threads=threads,
            confirm_tracks=confirm_tracks,
            keep_all=True,
        )
        dataset = read_dataset(
            data, root=root, select=select, classes=data_classes_for(predictor, classes)
        )
        if operating_threshold is None:
            operating_threshold = predictor.thresholds.operating
        evaluator = COCOEvaluator(dataset.class_names, operating_threshold=operating_threshold)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            metrics, _ = evaluate_with_breakdown(
                predictor,
                dataset,
                max_frames=max_frames,
                evaluator=evaluator,
                operating_threshold=operating_threshold,
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
                f"(mask targets; boxes >= {operating_threshold} filled, centroid within 3 px)"
            )
        echo_warnings(caught)
        if json_out is not None:
            write_json_atomic(json_out, metrics)
            typer.echo(f"metrics: {json_out}")
        typer.echo(f"results in {out_dir} (metrics.json, pr_curve.png, detections.json)")
