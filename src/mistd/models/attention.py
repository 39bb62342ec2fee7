"""CBAM (convolutional block attention module): channel attention, then spatial attention.

This is the CBAM that the official CHAL code uses after early fusion and in the causal gate's
refinement (docs/design.md §4.2). Its source file (`nets/module/CBAM.py`) is not in the official
repository; the structure below follows docs/design.md §4.2 and the official checkpoint's key names
(`channel_attention.shared_MLP.{0,2}` without bias, `spatial_attention.conv2d` with bias), and the
fidelity fixture confirms it.
"""

from __future__ import annotations

import torch
from torch import nn


class ChannelAttention(nn.Module):
    """Per-channel weights in (0, 1): `[B, C, H, W] -> [B, C, 1, 1]`.

    Average- and max-pooled descriptors go through one shared 1x1 MLP `C -> C/reduction -> C`
    (no bias, ReLU); the weights are the sigmoid of the sum of the two outputs.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        average = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        maximum = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(average + maximum)


class SpatialAttention(nn.Module):
    """Per-pixel weights in (0, 1): `[B, C, H, W] -> [B, 1, H, W]`.

    Channel-mean and channel-max maps (in that order) -> `kernel_size` conv 2 -> 1 with bias ->
    sigmoid.
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """`x * channel_attention(x)`, then `* spatial_attention(.)`: `[B, C, H, W] -> same shape`."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel_attention = ChannelAttention(channels, reduction)
        self.spatial_attention = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel_attention(x)
        return x * self.spatial_attention(x)
