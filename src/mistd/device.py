"""`resolve_device`: a device option (`auto`, `cpu`, `cuda`, `cuda:N`) -> a checked torch device.

Used by training (`train.device`, one CUDA device per torchrun process) and by inference
(`--device`, `Predictor(device=...)`).
"""

from __future__ import annotations

import torch

from mistd.errors import InputError


def resolve_device(name: str, local_rank: int = 0, option: str = "train.device") -> torch.device:
    """`auto` -> this process's CUDA device if CUDA is available, else CPU.

    InputError naming `option` for an unknown device, or CUDA (or cuda:N) that is not there.
    """
    given = name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(
            f"{option}: unknown device '{name}' (use auto, cpu, cuda, cuda:N)"
        ) from None
    if device.type not in ("cpu", "cuda"):
        raise InputError(
            f"{option}: device '{name}' is not supported (use auto, cpu, cuda, cuda:N)"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{option} is '{given}' but CUDA is not available (use auto or cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(
            f"{option} is '{given}' but this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device
