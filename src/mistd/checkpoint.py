"""Checkpoints: atomic saving, `weights_only` loading, RNG states.

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

Turning weights into a model or a detector is `mistd.weights`' job.
"""

from __future__ import annotations

import io
import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistd import __version__
from mistd.errors import InputError
from mistd.io import atomic_path


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
    if path.suffix.lower() == ".onnx":
        raise InputError(
            "an ONNX graph, not a PyTorch checkpoint: here give the .pt it was exported from "
            "(or a shipped name); `mistd detect/eval --weights` run .onnx graphs",
            path,
        )
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


def make_checkpoint(**fields: Any) -> dict[str, Any]:
    """A checkpoint dict with the version stamp (fields as in the module docstring)."""
    return {"mistd_version": __version__, **fields}
