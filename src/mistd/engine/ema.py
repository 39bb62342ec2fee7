"""Exponential moving average of model weights (official CHAL / YOLOX `ModelEMA`)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel/DataParallel wrapper."""
    return model.module if hasattr(model, "module") else model


class ModelEMA:
    """EMA of all floating-point state (parameters AND BatchNorm running statistics).

    After `u` updates the decay is `decay * (1 - exp(-u / tau))`, so early updates follow the
    model closely (official: decay 0.9999, tau 2000). The EMA copy is kept in eval mode without
    gradients; use `.module` for evaluation and export.
    """

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0
    ):
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.tau = tau
        self.updates = updates

    def current_decay(self) -> float:
        return self.decay * (1.0 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards `model`'s current state."""
        self.updates += 1
        d = self.current_decay()
        source = unwrap(model).state_dict()
        for key, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[key].detach(), alpha=1.0 - d)
            else:
                value.copy_(source[key])

    def state_dict(self) -> dict:
        return {"state_dict": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["state_dict"])
        self.updates = int(state["updates"])
