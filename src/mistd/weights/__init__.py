"""The weights shipped in the package, and THE loader of any weights: a zoo name, shipped
weights, a mistd checkpoint or an official CHAL one.

This module sits below both the training engine and inference (neither imports the other): the
checkpoint file format is `mistd.checkpoint`, the run config `mistd.run_config`, the official
key conversion `mistd.models.official`.

`read_weights(source)` resolves and reads any of them into `Weights` (mistd-named tensors, the run
config, where they came from); everything else here is a thin use of it:

    weights = read_weights("yolox-ir-s")          # or a checkpoint path, or an official .pth
    model = weights.build_model()                  # the zoo model, weights loaded strictly, eval
    load_initial_weights(other_model, "yolox-ir-s")  # what fits, to start a training run
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mistd.checkpoint import checkpoint_weights, is_mistd_checkpoint, load_checkpoint
from mistd.config import apply_overrides, to_dict
from mistd.errors import InputError
from mistd.frame_check import CHECKPOINT_KEY as FRAME_CHECK_KEY
from mistd.frame_check import FrameCheck
from mistd.models.official import convert_official, is_official_state_dict, official_num_classes
from mistd.models.zoo import ZOO, build_model
from mistd.run_config import (
    RunConfig,
    build_run_config,
    run_config_from_dict,
)
from mistd.thresholds import CHECKPOINT_KEY, LEARNED_DEFAULTS, Thresholds

WeightsKind = Literal["zoo", "mistd", "official"]


@dataclass
class Weights:
    """Weights read from any source, in mistd names, not yet in a model.

    Attributes:
        kind: `zoo` (a zoo model name: no weights, the model keeps its initialisation), `mistd` (a
            mistd checkpoint: its EMA weights when present) or `official` (an official CHAL
            state dict, converted to mistd names in float32).
        state_dict: the weights; None for `zoo`.
        run_config: the checkpoint's run config; for an official checkpoint zoo model `chal` with
            its number of classes; for a zoo name the defaults.
        source: the file read, or the zoo name.
        dropped: official keys not converted, with the reason (`convert_official`); else empty.
        thresholds: the display / operating / track scores: the checkpoint's `thresholds` entry
            where it has one (`mistd.thresholds`), else the defaults of trained models.
        frame_check: the checkpoint's `frame_check` settings (`mistd.frame_check`; default off).
    """

    kind: WeightsKind
    state_dict: dict[str, torch.Tensor] | None
    run_config: RunConfig
    source: str | Path
    dropped: dict[str, str] = field(default_factory=dict)
    thresholds: Thresholds = LEARNED_DEFAULTS
    frame_check: FrameCheck = field(default_factory=FrameCheck)

    @property
    def name(self) -> str:
        """The zoo model name, or `official:<file name>` for an official checkpoint."""
        if self.kind == "official":
            return f"official:{Path(self.source).name}"
        return self.run_config.model_name

    def build_model(self, overrides: dict[str, Any] | None = None) -> nn.Module:
        """The zoo model of `run_config` (its model section, then `overrides`, e.g.
        `{"input_size": [512, 512]}`) with these weights loaded strictly, in eval mode.

        InputError naming the source when the weights do not fit the model."""
        cfg = self.run_config
        model_cfg = apply_overrides(cfg.model, overrides) if overrides else cfg.model
        model, _ = build_model(cfg.model_name, to_dict(model_cfg))
        if self.state_dict is None:
            return model.eval()
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            # torch's first line is only "Error(s) in loading state_dict for X:"; detail follows.
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = " ".join(lines[1:])
            if len(detail) > 300:
                detail = detail[:300] + "..."
            raise InputError(
                f"checkpoint does not fit model '{cfg.model_name}': {detail or lines[0]}",
                self.source,
            ) from None
        return model.eval()


def read_weights(source: str | Path, *, zoo: bool = False) -> Weights:
    """Resolve `source` and read its weights (InputError naming the file for anything else).

    Args:
        source: a file, either a mistd checkpoint (`runs/train/exp/weights/best.pt`) or an
            official CHAL state dict (plain, with a DDP `module.` prefix, or as
            `{"state_dict": ...}`); or the name of weights shipped in the package
            (`shipped_weights()`); or, with `zoo`, a zoo model name (random weights).
        zoo: accept zoo model names (off where random weights would be a silent mistake, as in
            `load_detector`).
    """
    if zoo and str(source) in ZOO and not Path(source).is_file():
        return Weights("zoo", None, build_run_config(str(source)), str(source))
    path = _resolve_weights(source)
    data = load_checkpoint(path)
    if is_mistd_checkpoint(data):
        state = checkpoint_weights(data)
        check_finite(state, path)
        thresholds = Thresholds.from_dict(data.get(CHECKPOINT_KEY), LEARNED_DEFAULTS, path)
        check = FrameCheck.from_dict(data.get(FRAME_CHECK_KEY), path)
        return Weights(
            "mistd", state, _run_config_of(data), path, thresholds=thresholds, frame_check=check
        )
    if isinstance(data.get("state_dict"), dict):  # the official code's wrapped form
        data = data["state_dict"]
    if is_official_state_dict(data):
        check_finite(data, path)
        state, dropped = convert_official(data, source=path)
        model = {"num_classes": official_num_classes(data)}
        return Weights("official", state, build_run_config("chal", {"model": model}), path, dropped)
    raise InputError(
        "not a mistd checkpoint (needs 'state_dict' and 'model') nor an official CHAL state dict",
        path,
    )


def _run_config_of(data: dict[str, Any]) -> RunConfig:
    """A mistd checkpoint's run config: `data["config"]` is a training run's config
    (`{"model_name", "model": {...}, ...}`) or just a model config dict (then the run's other
    sections are the defaults)."""
    config = data.get("config") or {}
    if "model_name" in config:
        return run_config_from_dict(config)
    name = data["model"] if isinstance(data["model"], str) else ""
    return build_run_config(name, {"model": config})


def shipped_weights() -> list[str]:
    """Names of the weights shipped inside the package (`mistd/weights/<name>.pt`)."""
    folder = resources.files("mistd") / "weights"
    if not folder.is_dir():
        return []
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt"))


def _resolve_weights(weights: str | Path) -> Path:
    """A file path, or the NAME of shipped weights (`mistd/weights/<name>.pt`)."""
    path = Path(weights)
    if path.is_file():
        return path
    name = str(weights)
    if "/" not in name and "\\" not in name:
        stem = name[:-3] if name.endswith(".pt") else name
        shipped = resources.files("mistd") / "weights" / f"{stem}.pt"
        if shipped.is_file():
            return Path(str(shipped))
        listing = ", ".join(shipped_weights()) or "none are shipped yet"
        raise InputError(
            f"weights '{name}' is neither a file nor a shipped weights name ({listing})", path
        )
    raise InputError("weights file not found", path)


def check_finite(state: dict[str, torch.Tensor], source: str | Path | None) -> None:
    """InputError naming `source` when weights hold NaN or inf (a diverged or damaged file):
    such a model predicts nothing, silently."""
    bad = [
        k
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(v.isfinite().all())
    ]
    if bad:
        raise InputError(
            f"{len(bad)} weight tensor(s) hold NaN or inf values, e.g. '{bad[0]}' (a diverged "
            "training run?): use an earlier checkpoint",
            source,
        )


def load_initial_weights(model: nn.Module, weights: str | Path) -> tuple[int, list[str], list[str]]:
    """Load `weights` into `model` where names and shapes agree (fine-tuning, pretrained starts).

    Tensors whose shapes differ under the same name (e.g. another detector's head) are skipped.
    Returns `(tensors loaded, model keys left at their init, checkpoint keys not used)`. When most
    shared names differ in shape, or none is shared, it is an InputError (another width, most
    likely, or another model).
    """
    state = read_weights(weights).state_dict
    own = model.state_dict()
    shared = [k for k in state if k in own]
    mismatched = [k for k in shared if own[k].shape != state[k].shape]
    if not shared or len(mismatched) * 2 > len(shared):
        example = ""
        if mismatched:
            k = mismatched[0]
            example = f", e.g. '{k}' {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        raise InputError(
            f"the init weights do not fit the model: {len(mismatched)} of {len(shared)} shared "
            f"tensors differ in shape{example} (another model or width?)",
            str(weights),
        )
    usable = {k: v for k, v in state.items() if k not in mismatched}
    result = model.load_state_dict(usable, strict=False)
    loaded = len(usable) - len(result.unexpected_keys)
    return loaded, list(result.missing_keys), list(result.unexpected_keys) + mismatched
