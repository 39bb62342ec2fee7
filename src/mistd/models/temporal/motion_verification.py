"""Motion-consistency verification (second level of CHAL's hierarchical anomaly learning).

Per-frame appearance anomaly maps are embedded as tokens and attended over (frames x 4 x 4 px)
3D windows, so that an anomaly that persists along a plausible trajectory is kept and a one-frame
flicker is suppressed (official `nets/stst.py::SpatioTemporalSwinTransformer`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from mistd.models.blocks import BaseConv
from mistd.models.temporal.swin3d import SwinLayer3D

TemporalReadout = Literal["official", "learned"]


class MotionVerification(nn.Module):
    """Appearance anomalies of a clip `[B, T, 1, h, w]` -> verified anomaly of the key frame
    `[B, 1, h, w]` in (0, 1).

    Embedding: BaseConv 3x3 1 -> dim/2, BaseConv 3x3 dim/2 -> dim per frame, plus one learned
    `[1, dim]` vector added to every token. Then `num_layers` 3D Swin layers (window
    (T, window, window); every second layer shifted by (0, window/2, window/2); stochastic depth
    linspace(0, drop_path_rate, num_layers)). Reconstruction: BaseConv 3x3 dim -> dim/2, BaseConv
    3x3 dim/2 -> 1 with a sigmoid.

    Readout (`temporal_readout`):
        "official": eval mode reconstructs the key frame's tokens only; train mode reconstructs
            every frame and returns the softmax(`temporal_weights`)-weighted sum. Officially those
            weights are a Parameter that the optimiser never receives (they are not in any of the
            official train.py param groups), so they stay at ones and the train output is the plain
            mean over frames (the `chal` preset freezes them).
        "learned" (the paper): the weighted sum with learnable weights, in train and eval.
    """

    def __init__(
        self,
        num_frames: int,
        *,
        dim: int = 32,
        num_heads: int = 2,
        window: int = 4,
        num_layers: int = 1,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.2,
        temporal_readout: TemporalReadout = "official",
    ):
        super().__init__()
        if temporal_readout not in ("official", "learned"):
            raise ValueError(
                f"temporal_readout must be 'official' or 'learned', got {temporal_readout!r}"
            )
        self.num_frames = num_frames
        self.temporal_readout = temporal_readout
        self.embed = nn.Sequential(BaseConv(1, dim // 2, 3, 1), BaseConv(dim // 2, dim, 3, 1))
        self.token_bias = nn.Parameter(torch.zeros(1, dim))
        nn.init.trunc_normal_(self.token_bias, std=0.02)
        window_size = (num_frames, window, window)
        shift = (0, window // 2, window // 2)
        # Stochastic depth linspace(0, rate, num_layers): [0.0] for the official single layer.
        rates = torch.linspace(0, drop_path_rate, num_layers).tolist()
        self.layers = nn.ModuleList(
            [
                SwinLayer3D(
                    dim,
                    num_heads,
                    window=window_size,
                    shift=(0, 0, 0) if i % 2 == 0 else shift,
                    mlp_ratio=mlp_ratio,
                    drop_path=rates[i],
                )
                for i in range(num_layers)
            ]
        )
        self.reconstruct = nn.Sequential(
            BaseConv(dim, dim // 2, 3, 1), BaseConv(dim // 2, 1, 3, 1, act="sigmoid")
        )
        # A Parameter in both readouts, as officially (it counts among the official 15,686,519
        # used parameters); the `chal` preset freezes it, as the official optimiser never sees it.
        self.temporal_weights = nn.Parameter(torch.ones(num_frames))

    def min_size(self) -> tuple[int, int]:
        """Smallest map (h, w) at which every Swin layer keeps its configured window and shift:
        a traced graph is valid from there up (`mistd.models.temporal.swin3d`)."""
        sizes = [layer.min_size() for layer in self.layers]
        return max(s[1] for s in sizes), max(s[2] for s in sizes)

    def tokens(self, anomaly: torch.Tensor) -> torch.Tensor:
        """`[B, T, 1, h, w] -> [B, T, h, w, dim]` tokens after the Swin layers."""
        b, t, _, h, w = anomaly.shape
        x = self.embed(anomaly.reshape(b * t, 1, h, w))
        x = x.reshape(b, t, -1, h, w).permute(0, 1, 3, 4, 2) + self.token_bias
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, anomaly: torch.Tensor) -> torch.Tensor:
        x = self.tokens(anomaly)
        b, t, h, w, c = x.shape
        if self.temporal_readout == "official" and not self.training:
            return self.reconstruct(x[:, -1].permute(0, 3, 1, 2))
        frames = self.reconstruct(x.reshape(b * t, h, w, c).permute(0, 3, 1, 2))
        weights = torch.softmax(self.temporal_weights, dim=0)
        return (frames.reshape(b, t, 1, h, w) * weights[None, :, None, None, None]).sum(dim=1)
