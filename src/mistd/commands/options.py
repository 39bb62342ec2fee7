"""Options several commands share."""

from __future__ import annotations

import typer

from mistd.errors import InputError

# `--score-threshold` meant the display threshold in `detect` and the operating point in `eval`,
# `eval-dets` and `track`; each now has its own name (`--display-threshold`,
# `--operating-threshold`) and the old one stays readable, hidden from the help.
OLD_SCORE_THRESHOLD = typer.Option(
    None, "--score-threshold", help="Old name of the threshold option.", hidden=True
)


def old_option(
    value: float | None, old_value: float | None, option: str, old: str = "--score-threshold"
) -> float | None:
    """`value` of `option`, or `old_value` given by its old name `old` (a note names the new one);
    InputError if both are given."""
    if old_value is None:
        return value
    if value is not None:
        raise InputError(f"give {option} only ({old} is its old name)")
    typer.echo(f"note: {old} is now {option}", err=True)
    return old_value


# Trained models' frame check (`mistd.frame_check`), the same option on detect, eval, track, demo.
FRAME_CHECK = typer.Option(
    "auto",
    "--frame-check",
    help="Trained models: re-measure boxes and scores in the frame: auto (as the model file "
    "says), on, off, or key=value pairs (margin=0: boxes tight around the target, as SIRST "
    "draws them). See mistd.frame_check.",
)


# A trained model's torch precision and torch.compile (`Predictor(precision=..., compile=...)`), on
# detect, eval and track: eval scores the mode a deployment runs.
PRECISION = typer.Option(
    "fp32",
    "--precision",
    help="--weights precision: fp32, or bf16 (opt-in: autocast, decoding in fp32).",
)
COMPILE = typer.Option(
    False,
    "--compile",
    help="--weights that stream, torch backend: torch.compile (~30 s per frame size to start, "
    "then 1.2-1.3x faster; with --precision bf16 the fastest mode on CPUs with AMX; needs a C++ "
    "compiler).",
)


# CPU threads of a trained model's forward (`Predictor(threads=...)`), on detect, eval, track, demo.
THREADS = typer.Option(
    None,
    "--threads",
    help="Trained models: CPU threads of the forward (default: one per core). Give 1 to each "
    "process when several cameras or jobs share the cores.",
)
