"""Normalized Gaussian Wasserstein Distance (Wang et al. 2021, "NWD for tiny object detection").

A box (cx, cy, w, h) is modelled as a 2-D Gaussian N((cx, cy), diag(w^2/4, h^2/4)); the squared
2-Wasserstein distance between two such Gaussians is |c1 - c2|^2 + ((w1 - w2)^2 + (h1 - h2)^2) / 4,
and NWD = exp(-sqrt(W2^2) / C). Unlike IoU it stays informative for tiny, non-overlapping boxes.
Constant C = 12 and eps = 1e-7 as the official CHAL `nets/yolo_training.py::wasserstein_loss`
(which adds eps to the squared centre distance and to each width/height).
"""

from __future__ import annotations

import torch


def normalized_wasserstein(
    pred: torch.Tensor, target: torch.Tensor, constant: float = 12.0, eps: float = 1e-7
) -> torch.Tensor:
    """NWD similarity in (0, 1] of matching rows of `[N, 4]` cxcywh boxes -> `[N]`."""
    pred = pred.reshape(-1, 4)
    target = target.reshape(-1, 4)
    delta = pred[:, :2] - target[:, :2]
    centre_distance = delta[:, 0] ** 2 + delta[:, 1] ** 2 + eps
    dw = (pred[:, 2] + eps) - (target[:, 2] + eps)
    dh = (pred[:, 3] + eps) - (target[:, 3] + eps)
    wasserstein2 = centre_distance + (dw**2 + dh**2) / 4
    return torch.exp(-torch.sqrt(wasserstein2) / constant)


def nwd_loss(
    pred: torch.Tensor, target: torch.Tensor, constant: float = 12.0, eps: float = 1e-7
) -> torch.Tensor:
    """Per-pair `1 - NWD` -> `[N]`."""
    return 1.0 - normalized_wasserstein(pred, target, constant, eps)
