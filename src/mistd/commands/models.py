"""CLI commands about models: `mistd convert-official` (official CHAL checkpoint -> mistd)."""

from __future__ import annotations

from pathlib import Path

import typer

CONVERT_HELP = """Convert an official CHAL checkpoint (github.com/UESTC-nnLab/CHAL) to mistd format.

\b
Examples:
  mistd convert-official DAUB_best.pth --out chal_daub.pt
  mistd convert-official official.pth --out chal.pt --verify official_io_128.pt

Every official key is mapped or dropped for a stated reason (dead layer, derived buffer); any
other key is an error. Weights are stored as float32 in the mistd checkpoint format
{"state_dict", "config" (a run config with model_name chal), "mistd_version", "model": "chal"},
usable as `mistd eval/detect --weights OURS.pt`. With --verify REF.pt (a dict with
'input' [B, C, T, H, W] and some of fused/background/appearance_anomaly/anomaly/neck/head, as the
official model computed them), the converted model is run on the input and each tensor's relative
L2 error is printed; the command exits with status 1, writing nothing, if any exceeds --tolerance.
"""


def convert_official_command(
    checkpoint: Path = typer.Argument(..., help="official CHAL state dict (.pth/.pt)"),
    out: Path = typer.Option(..., "--out", "-o", help="where to write the mistd checkpoint"),
    verify: Path | None = typer.Option(
        None, "--verify", help="reference tensors of the official model to compare against"
    ),
    tolerance: float = typer.Option(1e-4, help="largest relative L2 error accepted by --verify"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing --out file"),
) -> None:
    import torch

    from mistd import __version__
    from mistd.checkpoint import load_checkpoint
    from mistd.errors import InputError
    from mistd.io import atomic_path, check_overwrite
    from mistd.models.official import verify_against_reference
    from mistd.run_config import run_config_to_dict
    from mistd.weights import read_weights

    check_overwrite(out, overwrite)
    weights = read_weights(checkpoint)
    if weights.kind != "official":
        raise InputError("not an official CHAL state dict (no 'mulit1.1.weight' key)", checkpoint)
    model, dropped = weights.build_model(), weights.dropped
    typer.echo(f"mapped {len(model.state_dict())} tensors; dropped {len(dropped)}:")
    for key, reason in dropped.items():
        typer.echo(f"  {key}: {reason}")

    if verify is not None:
        reference = load_checkpoint(verify)  # InputError unless a dict (of reference tensors)
        errors = verify_against_reference(model, reference)
        if not errors:
            raise InputError("no reference tensor to compare (fused, background, ...)", verify)
        worst = max(errors.values())
        typer.echo(f"{'tensor':<20} {'relative L2 error':>18}")
        for name, error in errors.items():
            flag = "" if error <= tolerance else "  > tolerance"
            typer.echo(f"{name:<20} {error:>18.3e}{flag}")
        if worst > tolerance:
            typer.echo(
                f"FAILED: worst error {worst:.3e} > {tolerance:g}; nothing written", err=True
            )
            raise typer.Exit(1)

    # The config of a training run with this model (what `mistd eval/detect --weights` read).
    payload = {
        "state_dict": model.state_dict(),
        "config": run_config_to_dict(weights.run_config),
        "mistd_version": __version__,
        "model": "chal",
    }
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    typer.echo(f"wrote {out}")


MODELS_HELP = """List the model zoo, the shipped weights and the shipped paper configs.

\b
Examples:
  mistd models
  mistd train --model chal-paper --data data/synth model.width=0.25
"""


def models_command() -> None:
    """Print the zoo (name, frames, description), shipped weights and shipped configs."""
    from rich.console import Console
    from rich.table import Table

    from mistd.commands.train import shipped_configs
    from mistd.models.zoo import ZOO
    from mistd.weights import shipped_weights

    table = Table(title="mistd model zoo (mistd train --model NAME)")
    for column in ("name", "frames", "description"):
        table.add_column(column)
    for name, (config_class, _) in ZOO.items():
        defaults = config_class()
        frames = str(getattr(defaults, "num_frames", "-"))
        doc = (config_class.__doc__ or "").strip().split("\n\n")[0]
        table.add_row(name, frames, " ".join(doc.split()))
    console = Console()
    console.print(table)
    console.print("shipped weights (--weights NAME): " + (", ".join(shipped_weights()) or "none"))
    console.print("shipped configs (--cfg NAME):     " + (", ".join(shipped_configs()) or "none"))


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("models", help=MODELS_HELP)(models_command)
    app.command("convert-official", help=CONVERT_HELP)(convert_official_command)
