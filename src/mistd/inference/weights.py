"""Trained weights: shipped names, mistd checkpoints and official CHAL checkpoints.

`load_detector` turns a checkpoint (or a shipped-weights name, or an official CHAL checkpoint) into
a `ClipDetector` that takes raw frames and returns detections in original pixels;
`load_initial_weights` starts a training run from such weights.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mistd.engine.checkpoint import checkpoint_weights, is_mistd_checkpoint, load_checkpoint
from mistd.errors import InputError
from mistd.inference.detector import ClipDetector


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


def initial_state_dict(weights: str | Path) -> dict[str, torch.Tensor]:
    """Weights to start a training run from: a mistd checkpoint (its EMA weights when present),
    a shipped-weights name, or an official CHAL state dict (converted to mistd names)."""
    path = _resolve_weights(weights)
    data = load_checkpoint(path)
    if is_mistd_checkpoint(data):
        check_finite(checkpoint_weights(data), path)
        return checkpoint_weights(data)
    from mistd.models.official import convert_official, is_official_state_dict

    if is_official_state_dict(data):
        check_finite(data, path)
        return convert_official(data, source=path)[0]
    raise InputError("neither a mistd checkpoint nor an official CHAL state dict", path)


def load_initial_weights(model: nn.Module, weights: str | Path) -> tuple[int, list[str], list[str]]:
    """Load `weights` into `model` where names and shapes agree (fine-tuning, pretrained starts).

    Tensors whose shapes differ under the same name (e.g. another detector's head) are skipped.
    Returns `(tensors loaded, model keys left at their init, checkpoint keys not used)`. When most
    shared names differ in shape, or none is shared, it is an InputError (another width, most
    likely, or another model).
    """
    state = initial_state_dict(weights)
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


def model_from_checkpoint(
    data: dict[str, Any], use_ema: bool = True, source: str | Path | None = None
) -> tuple[nn.Module, Any]:
    """Build the zoo model a mistd checkpoint names and load its (EMA) weights (strict).

    `data["config"]` is a training run's config (`{"model_name", "model": {...}, ...}`) or just
    a model config dict (then the run's other sections are the defaults). Returns
    `(model in eval mode, run_config)`; InputError (naming `source`) when the weights do not fit.
    """
    from mistd.config import to_dict
    from mistd.engine.run_config import build_run_config, run_config_from_dict
    from mistd.models.zoo import build_model

    config = data.get("config") or {}
    if "model_name" in config:
        cfg = run_config_from_dict(config)
    else:
        name = data["model"] if isinstance(data["model"], str) else ""
        cfg = build_run_config(name, {"model": config})
    model, _ = build_model(cfg.model_name, to_dict(cfg.model))
    check_finite(checkpoint_weights(data, use_ema), source)
    try:
        model.load_state_dict(checkpoint_weights(data, use_ema), strict=True)
    except RuntimeError as exc:
        # torch's first line is only "Error(s) in loading state_dict for X:"; the detail follows.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = " ".join(lines[1:])
        if len(detail) > 300:
            detail = detail[:300] + "..."
        raise InputError(
            f"checkpoint does not fit model '{cfg.model_name}': {detail or lines[0]}", source
        ) from None
    return model.eval(), cfg


def load_detector(
    weights: str | Path,
    device: str | torch.device = "cpu",
    score_threshold: float = 0.001,
    nms_iou: float = 0.65,
) -> ClipDetector:
    """A `ClipDetector` from a mistd checkpoint, a shipped-weights name or an official checkpoint.

    Args:
        weights: checkpoint path (`runs/train/exp/weights/best.pt`), the name of shipped weights,
            or an official CHAL `.pth` state dict (converted by `mistd.models.official`).
        device: torch device (`auto` = CUDA if available, else CPU).
        score_threshold, nms_iou: decoding (official protocol: 0.001 and 0.65).
    """
    from mistd.config import to_dict
    from mistd.engine.distributed import resolve_device
    from mistd.engine.run_config import run_config_to_dict
    from mistd.models.official import is_official_state_dict, model_from_official

    device = resolve_device(str(device), option="--device")
    path = _resolve_weights(weights)
    data = load_checkpoint(path)
    if is_mistd_checkpoint(data):
        model, run_cfg = model_from_checkpoint(data, source=path)
        model_cfg, name, config = run_cfg.model, run_cfg.model_name, run_config_to_dict(run_cfg)
    elif is_official_state_dict(data):
        check_finite(data, path)
        model, model_cfg, _ = model_from_official(data, source=path)
        name, config = f"official:{path.name}", to_dict(model_cfg)
    else:
        raise InputError(
            "not a mistd checkpoint (needs 'state_dict' and 'model') nor an official CHAL "
            "state dict",
            path,
        )
    return ClipDetector(
        model,
        num_frames=model_cfg.num_frames,
        input_size=tuple(model_cfg.input_size),
        device=device,
        score_threshold=score_threshold,
        nms_iou=nms_iou,
        config=config,
        name=name,
    )


def load_official_or_mistd(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, Any]:
    """Load an official CHAL checkpoint or a mistd checkpoint -> (model in eval mode, model cfg).

    An official checkpoint is a plain CHAL `state_dict()` (built as zoo model `chal`). A mistd
    checkpoint is `{"state_dict", "config", "model", "mistd_version", ...}`, loaded by
    `model_from_checkpoint` (EMA weights when present).
    """
    from mistd.models.official import is_official_state_dict, model_from_official

    checkpoint = load_checkpoint(path)
    if is_official_state_dict(checkpoint):
        model, cfg, _ = model_from_official(checkpoint, source=path)
        return model.to(device).eval(), cfg
    if is_mistd_checkpoint(checkpoint):
        model, run_cfg = model_from_checkpoint(checkpoint, source=path)
        return model.to(device).eval(), run_cfg.model
    raise InputError(
        "not a mistd checkpoint (needs 'state_dict' and 'model') nor an official CHAL state dict",
        path,
    )
