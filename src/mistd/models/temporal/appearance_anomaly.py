"""Appearance anomaly (first level of CHAL's hierarchical anomaly learning, docs/design.md §4.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mistd.models.blocks import BaseConv


def cosine_distance_map(
    features: torch.Tensor, background: torch.Tensor, norm: nn.LayerNorm
) -> torch.Tensor:
    """`1 - cos(LN(F), LN(B))` per pixel: `[N, C, h, w]` x2 -> `[N, 1, h, w]`.

    Official `cosine_distance_residual`: one shared LayerNorm over channels (channels-last),
    L2 normalisation (`F.normalize`, eps 1e-12), then 1 - the dot product.
    """
    n, c, h, w = features.shape
    feats = F.normalize(norm(features.reshape(n, c, h * w).transpose(1, 2)), p=2, dim=-1)
    backs = F.normalize(norm(background.reshape(n, c, h * w).transpose(1, 2)), p=2, dim=-1)
    similarity = (feats * backs).sum(dim=-1)  # [N, h*w]
    return (1.0 - similarity).reshape(n, 1, h, w)


class AppearanceAnomaly(nn.Module):
    """Where a frame's features differ from its predicted background.

    Cosine distance (see `cosine_distance_map`) refined by BaseConv 3x3 1 -> 32, 32 -> 16 (SiLU)
    and 16 -> 1 with a sigmoid instead of SiLU (official `AppearanceAnomalyExtractor`).

    `forward(features [N, C, h, w], background [N, C, h, w]) -> anomaly [N, 1, h, w]` in (0, 1).
    """

    def __init__(self, channels: int, hidden: tuple[int, int] = (32, 16)):
        super().__init__()
        self.norm = nn.LayerNorm(channels)  # eps 1e-5 (PyTorch default), as officially
        self.refine = nn.Sequential(
            BaseConv(1, hidden[0], 3, 1),
            BaseConv(hidden[0], hidden[1], 3, 1),
            BaseConv(hidden[1], 1, 3, 1, act="sigmoid"),
        )

    def forward(self, features: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        return self.refine(cosine_distance_map(features, background, self.norm))
