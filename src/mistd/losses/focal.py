"""Sigmoid focal loss (Lin et al. 2017), as `torchvision.ops.sigmoid_focal_loss` computes it.

The official CHAL criterion calls torchvision's function (its own `FocalLoss` class, which uses
`pt = exp(-BCE)`, is disabled by `use_focal_loss = False`); the two differ for soft targets such as
the IoU-weighted class targets, so this is torchvision's form: `p_t = p*t + (1-p)*(1-t)`,
`alpha_t = alpha*t + (1-alpha)*(1-t)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Element-wise focal loss (no reduction); `logits` and `targets` (in [0, 1]) of one shape.

    `alpha < 0` disables the class-balancing factor (torchvision convention).
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss
