"""Causal regulation gate (CRG): re-weight the key frame's features by the verified anomaly.

Official `CausalAnomalyNeck.forward` tail (docs/design.md §4.2):
    A = clamp(anomaly, 0, 1);  H = where(A > tau, eta * A, 0.1 * A)   (tau 0.3, eta 0.8)
    M = sigmoid(conv1x1(ReLU(BN(grouped conv3x3(F_key)))))            (BatchNorm2d eps 1e-5)
    F_g = (F_key * M) * (1 + H)
    out = CBAM(Dropout2d(BaseConv3x3(Dropout2d(F_g))))
The paper adds a residual path into the amplifier (`residual=True`): F_g = F_key + (F_key*M)*(1+H).
"""

from __future__ import annotations

import torch
from torch import nn

from mistd.models.attention import CBAM
from mistd.models.blocks import BaseConv


def amplifier(anomaly: torch.Tensor, threshold: float = 0.3, scale: float = 0.8) -> torch.Tensor:
    """`H = where(A > threshold, scale * A, 0.1 * A)` with `A = clamp(anomaly, 0, 1)`."""
    a = anomaly.clamp(0, 1)
    return torch.where(a > threshold, a * scale, a * 0.1)


class CausalGate(nn.Module):
    """Causal regulation gate (see module docstring).

    `forward(features [B, C, h, w], anomaly [B, 1, h, w]) -> (gated [B, C, h, w], H [B, 1, h, w])`
    where H is the amplifier.

    Args:
        channels: C. mask_groups: groups of the mask's 3x3 conv (official C // 8 = 16).
        threshold, scale: tau and eta of the amplifier. dropout: Dropout2d rate of the refinement.
        residual: the paper's residual path (see module docstring).
    """

    def __init__(
        self,
        channels: int,
        *,
        mask_groups: int | None = None,
        threshold: float = 0.3,
        scale: float = 0.8,
        dropout: float = 0.1,
        residual: bool = False,
    ):
        super().__init__()
        groups = mask_groups if mask_groups is not None else max(channels // 8, 1)
        self.threshold, self.scale, self.residual = threshold, scale, residual
        self.mask = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, groups=groups),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
            nn.Sigmoid(),
        )
        self.refine = nn.Sequential(
            nn.Dropout2d(dropout),
            BaseConv(channels, channels, 3, 1),
            nn.Dropout2d(dropout),
            CBAM(channels),
        )

    def forward(
        self, features: torch.Tensor, anomaly: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        gain = amplifier(anomaly, self.threshold, self.scale)
        gated = (features * self.mask(features)) * (1.0 + gain)
        if self.residual:
            gated = features + gated
        return self.refine(gated), gain
