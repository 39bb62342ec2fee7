"""CLI command: `mistd train` (the training engine lives in `mistd.engine`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

TRAIN_HELP = """Train a detector from the zoo; outputs go to runs/train/<name> (auto-incremented).

\b
Examples:
  mistd train --model mf-baseline --data data/synth/train.json train.epochs=10
  mistd train --model yolox-s --data DAUB/train.txt --val DAUB/val.txt data.root=DAUB
  mistd train --model mf-baseline --data d.json --cfg exp.yaml model.width=0.25 train.amp=bf16
  mistd train --model chal --cfg daub-h            # a paper benchmark (see mistd/configs/)
  mistd train --resume runs/train/exp                # continue a killed run exactly
  mistd train --model chal --cfg daub-h --init chal_official.pth   # start from other weights
  torchrun --nproc_per_node 2 -m mistd.cli train --model mf-baseline --data d.json
  # real thermal clips (videos + label CSVs), their own split, native 320x256, a step budget:
  mistd train --model yolox-s --data drone_ir data.train_select=train --val drone_ir \
      data.val_select=val 'model.input_size=[256,320]' model.width=0.25 train.max_steps=1200
  mistd train --model chal --data drone_ir ... --init yolox-ir-s train.freeze=backbone,neck

Overrides are dotted key=value pairs on the resolved config (sections model, data, train);
the resolved config is saved as runs/train/<name>/config.yaml. Without --val, whole sequences
of --data (data.val_fraction, default 20%) are held out for validation. model.num_classes
and the class names come from the data (data.classes=target merges them into one).
"""


def shipped_configs() -> list[str]:
    """Names of the configs shipped in `mistd/configs/` (e.g. `daub-h`)."""
    from importlib.resources import files

    folder = files("mistd") / "configs"
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_cfg(cfg: str | Path) -> dict[str, Any]:
    """The overrides in `--cfg`: an existing YAML file, else a shipped config by name."""
    from importlib.resources import as_file, files

    from mistd.config import load_yaml
    from mistd.errors import InputError

    if Path(cfg).is_file():
        return load_yaml(cfg)
    name = str(cfg).removesuffix(".yaml")
    if name in shipped_configs():
        with as_file(files("mistd") / "configs" / f"{name}.yaml") as path:
            return load_yaml(path)
    raise InputError(
        f"--cfg '{cfg}' is neither a file nor a shipped config "
        f"(shipped: {', '.join(shipped_configs()) or 'none'})"
    )


def _overrides(
    cfg_file: str | Path | None, data: str | None, val: str | None, items: list[str]
) -> list[dict[str, Any]]:
    from mistd.config import parse_dotted

    layers: list[dict[str, Any]] = []
    if cfg_file is not None:
        layers.append(load_cfg(cfg_file))
    paths: dict[str, Any] = {}
    if data is not None:
        paths["train"] = data
    if val is not None:
        paths["val"] = val
    if paths:
        layers.append({"data": paths})
    layers.append(parse_dotted(items))
    return layers


def _merge(layers: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def merge(dst: dict, src: dict) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v

    for layer in layers:
        merge(out, layer)
    return out


def _summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Training summary")
    table.add_column("item")
    table.add_column("value")
    table.add_row("run", result["run_dir"])
    table.add_row("epochs done", str(result["epochs_done"]))
    table.add_row("iterations", str(result["iterations"]))
    best = result["best_map50"]
    table.add_row("best mAP50", "not evaluated" if best < 0 else f"{best:.4f}")
    for key, value in result["last"].items():
        if key.startswith("loss_") or key in ("mAP50", "precision", "recall", "f1"):
            table.add_row(f"last {key}", f"{value:.4g}")
    table.add_row("time", f"{result['seconds']:.1f} s")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `mistd train` to `app`."""

    @app.command(
        "train",
        help=TRAIN_HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def train(
        overrides: list[str] = typer.Argument(None, help="dotted key=value config overrides"),
        model: str = typer.Option(None, "--model", "-m", help="zoo model name (mistd models)"),
        data: str = typer.Option(None, "--data", help="training data (any supported layout)"),
        val: str = typer.Option(
            None, "--val", help="validation data (default: held-out sequences)"
        ),
        cfg: str = typer.Option(
            None, "--cfg", help="YAML file of config overrides, or a shipped config (daub-h, ...)"
        ),
        name: str = typer.Option("exp", "--name", help="run name under runs/train/"),
        project: Path = typer.Option(
            Path("runs/train"), "--out", "--project", help="folder of runs (--project: old name)"
        ),
        resume: Path = typer.Option(None, "--resume", help="run folder or checkpoint to continue"),
        init: str = typer.Option(
            None, "--init", help="start from these weights (= train.init_weights=...)"
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar"),
    ) -> None:
        from mistd.engine.distributed import cleanup, init_distributed
        from mistd.engine.trainer import Trainer
        from mistd.errors import InputError
        from mistd.io import increment_path
        from mistd.run_config import absolute_paths, build_run_config

        layers = _overrides(cfg, data, val, list(overrides or []))
        if init is not None:
            layers.append({"train": {"init_weights": init}})
        if resume is not None:
            if model is not None:
                raise InputError("--resume continues the saved model; do not give --model")
            trainer = Trainer.from_checkpoint(resume, _merge(layers), progress=progress)
        else:
            if model is None:
                raise InputError("give --model NAME (see `mistd models`) or --resume RUN")
            run_cfg = absolute_paths(build_run_config(model, *layers))
            info = init_distributed(run_cfg.train.device)
            run_dir = increment_path(project, name) if info.is_main else None
            trainer = Trainer(run_cfg, run_dir, info=info, progress=progress)
        try:
            result = trainer.train()
        finally:
            cleanup(trainer.info)
        if trainer.info.is_main:
            _summary(result)
        if result["stopped"]:
            typer.echo(f"error: {result['stopped']}", err=True)
            sys.exit(1)
