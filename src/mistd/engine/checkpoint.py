"""Checkpoints (atomic, `weights_only`-loadable) and `load_detector` for trained weights.

A mistd checkpoint is a dict of plain containers and tensors (never pickled modules):

    state_dict      model weights (the raw training weights)
    ema             {"state_dict", "updates"} or None: the EMA weights (evaluated/deployed)
    model           zoo name, e.g. "chal"
    config          the resolved RunConfig as a nested dict
    mistd_version   version that wrote it
    epoch           epoch in progress (0-based)
    iteration       global iterations done
    batch_in_epoch  batches of `epoch` already consumed (a resumed run skips them)
    optimizer, scheduler, scaler, rng_states, best_map50, history, epoch_sums, nan_streak

`load_detector` turns a checkpoint (or a shipped-weights name, or an official CHAL checkpoint) into
a `ClipDetector` that takes raw frames and returns detections in original pixels.
"""

from __future__ import annotations

import io
import os
import pickle
import random
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mistd import __version__
from mistd.errors import InputError
from mistd.io import atomic_path
from mistd.structures import Detections


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write `checkpoint` atomically (a crash never leaves a truncated file).

    Serialised in memory first and written with plain file I/O: torch.save's own writer turns a
    full disk into a RuntimeError without the path, this gives an OSError (ENOSPC) naming it.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        file.write(buffer.getbuffer())
        file.flush()
        os.fsync(file.fileno())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with `torch.load(weights_only=True)` (InputError if unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path)
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # not a refusal: a damaged file
            raise InputError(
                "cannot read checkpoint (not a torch.save file, or damaged)", path
            ) from None
        # torch's message runs to six lines advising weights_only=False, i.e. running the file.
        raise InputError(
            "the file holds pickled Python objects besides tensors, which mistd does not load "
            "(loading them can run code); re-save it as a plain state dict "
            "(torch.save(model.state_dict(), PATH)) where it was made",
            path,
        ) from None
    except Exception as exc:  # torch raises many types for corrupt/foreign files
        first = (str(exc).strip().splitlines() or [""])[0]
        raise InputError(f"cannot read checkpoint ({type(exc).__name__}: {first})", path) from None
    if not isinstance(data, dict):
        raise InputError("not a checkpoint: expected a dict of tensors", path)
    return data


def is_mistd_checkpoint(data: Any) -> bool:
    """True for a mistd checkpoint: a dict with `state_dict` and `model` (the zoo name).

    `mistd_version` is not required: it is a stamp for humans, not a format marker.
    """
    return isinstance(data, dict) and "state_dict" in data and "model" in data


def checkpoint_weights(data: dict[str, Any], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The weights of a mistd checkpoint: its EMA weights when present (and `use_ema`)."""
    ema = data.get("ema")
    if use_ema and isinstance(ema, dict) and ema.get("state_dict"):
        return ema["state_dict"]
    return data["state_dict"]


# ----------------------------------------------------------------------------- RNG states


def get_rng_states() -> dict[str, Any]:
    """python / numpy / torch (and CUDA) RNG states as tensors and lists (weights_only-safe)."""
    version, internal, gauss = random.getstate()
    # The legacy global numpy RNG is what user code and libraries draw from: save it as it is.
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what `get_rng_states` captured."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in states["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


# ----------------------------------------------------------------------------- detector


def key_frame_window(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """The `[num_frames, H, W]` window ending at the key frame (last) of `frames [T, H, W]` (or
    one `[H, W]` frame): the last `num_frames` frames, or, when fewer are given, the earliest one
    repeated in front (the causal sequence-start rule). ValueError for another shape."""
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected frames [T, H, W], got shape {frames.shape}")
    if frames.shape[0] >= num_frames:
        return frames[-num_frames:]
    pad = np.repeat(frames[:1], num_frames - frames.shape[0], axis=0)
    return np.concatenate([pad, frames], axis=0)


class ClipDetector:
    """A trained model as a clip detector (COMMON.md interface 3).

    `detect(frames [T, H, W] raw uint8/uint16, bit_depth) -> Detections` in ORIGINAL pixels:
    frames are letterboxed to the model input (official preprocessing), the model predicts on
    the key frame (last), boxes are mapped back. Fewer than `num_frames` frames are padded by
    repeating the earliest one (the causal sequence-start rule); more are cut to the last T.

    Attributes:
        model: the `nn.Module` (eval mode).
        config: the RunConfig dict it was trained with ({} when unknown).
        num_frames: clip length T the model expects.
        input_size: model input (h, w).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        num_frames: int,
        input_size: tuple[int, int],
        device: str | torch.device = "cpu",
        score_threshold: float = 0.001,
        nms_iou: float = 0.65,
        config: dict[str, Any] | None = None,
        name: str = "",
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.num_frames = int(num_frames)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.config = config or {}
        self.name = name

    @torch.no_grad()
    def detect(self, frames: np.ndarray, bit_depth: int) -> Detections:
        """Detections on the key frame (last) of `frames [T, H, W]`, in original pixels."""
        return self.detect_batch([frames], bit_depth)[0]

    @torch.no_grad()
    def detect_batch(
        self, clips: Sequence[np.ndarray], bit_depth: int | Sequence[int]
    ) -> list[Detections]:
        """`detect` for several clips at once (one forward pass); `bit_depth` per clip or shared.

        Clips may differ in frame size (each is letterboxed to the same input size).
        """
        from mistd.data.transforms import to_model_input

        if not clips:
            return []
        depths = [bit_depth] * len(clips) if isinstance(bit_depth, int) else list(bit_depth)
        tensors, infos = [], []
        for frames, depth in zip(clips, depths, strict=True):
            tensor, info = to_model_input(
                key_frame_window(frames, self.num_frames), depth, self.input_size
            )
            tensors.append(tensor)
            infos.append(info)
        batch = torch.stack(tensors).to(self.device)
        predictions = self.model.predict(
            batch, score_threshold=self.score_threshold, nms_iou=self.nms_iou
        )
        out = []
        for pred, info in zip(predictions, infos, strict=True):
            pred = pred.to("cpu")
            boxes = info.boxes_to_original(pred.boxes.float().numpy())
            out.append(
                Detections(
                    torch.as_tensor(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4),
                    pred.scores.float(),
                    pred.labels.long(),
                    pred.maps,
                )
            )
        return out

    def __repr__(self) -> str:
        return (
            f"ClipDetector({self.name or type(self.model).__name__}, num_frames={self.num_frames}, "
            f"input_size={self.input_size}, device={self.device})"
        )


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


def make_checkpoint(**fields: Any) -> dict[str, Any]:
    """A checkpoint dict with the version stamp (fields as in the module docstring)."""
    return {"mistd_version": __version__, **fields}
