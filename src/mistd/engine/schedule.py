"""Learning-rate schedule: YOLOX warm-up + cosine, as the official CHAL code uses it.

The schedule is a pure function of the (possibly fractional) epoch, so it has no state to save: a
resumed run recomputes the same learning rate from its epoch and iteration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WarmCosineSchedule:
    """YOLOX `yolox_warm_cos_lr` (official CHAL `get_lr_scheduler("cos", ...)`).

    lr(e) = start + (peak - start) * (e / warmup)^2          for e <= warmup
          = min_lr                                           for e >= total - flat
          = min_lr + (peak - min_lr) / 2 * (1 + cos(pi * (e - warmup) / (total - warmup - flat)))

    Attributes:
        peak: learning rate after warm-up.
        total: schedule length in epochs.
        warmup: warm-up length in epochs (0 = none).
        warmup_start: learning rate at epoch 0.
        min_lr: final learning rate.
        flat: final epochs at `min_lr`.
        constant: ignore all of the above and return `peak`.
    """

    peak: float
    total: float
    warmup: float = 3.0
    warmup_start: float = 8e-6
    min_lr: float = 8e-7
    flat: float = 5.0
    constant: bool = False

    def __call__(self, epoch: float) -> float:
        if self.constant:
            return self.peak
        # Short runs: shrink warm-up/flat parts so the cosine part keeps a positive length
        # (official: warmup = min(max(0.05 * total, 1), 3), flat = min(max(0.05 * total, 1), 15)).
        warmup = min(self.warmup, self.total / 3)
        flat = min(self.flat, self.total / 3)
        if warmup > 0 and epoch <= warmup:
            return self.warmup_start + (self.peak - self.warmup_start) * (epoch / warmup) ** 2
        if epoch >= self.total - flat:
            return self.min_lr
        span = max(self.total - warmup - flat, 1e-12)
        progress = (epoch - warmup) / span
        return self.min_lr + 0.5 * (self.peak - self.min_lr) * (1.0 + math.cos(math.pi * progress))

    def state_dict(self) -> dict:
        """The schedule's parameters (stored in checkpoints for the record)."""
        return {
            "name": "constant" if self.constant else "warm_cosine",
            "peak": self.peak,
            "total": self.total,
            "warmup": self.warmup,
            "warmup_start": self.warmup_start,
            "min_lr": self.min_lr,
            "flat": self.flat,
        }


def schedule_from_config(train_cfg, steps_per_epoch: int | None = None) -> WarmCosineSchedule:
    """The schedule of a `TrainConfig` (official: warm-up from 0.1 x lr, floor 1e-6).

    With a step budget (`train_cfg.max_steps` and `steps_per_epoch` given), the schedule spans
    exactly `max_steps` iterations, warm-up and flat tail each at most 5% of them.
    """
    peak = train_cfg.lr
    total = float(train_cfg.epochs)
    warmup, flat = float(train_cfg.warmup_epochs), float(train_cfg.flat_epochs)
    if getattr(train_cfg, "max_steps", 0) and steps_per_epoch:
        total = train_cfg.max_steps / steps_per_epoch
        warmup, flat = min(warmup, 0.05 * total), min(flat, 0.05 * total)
    return WarmCosineSchedule(
        peak=peak,
        total=total,
        warmup=warmup,
        warmup_start=max(train_cfg.warmup_lr_ratio * peak, min(1e-6, peak)),
        min_lr=train_cfg.min_lr_ratio * peak,
        flat=flat,
        constant=train_cfg.schedule == "constant",
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
