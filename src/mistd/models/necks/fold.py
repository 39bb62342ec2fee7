"""Top-down fold of a PAFPN's (P3, P4, P5) into stride 8, exactly as the official CHAL
`nets/slowfastnet.py::slowfastnet.forward` computes it (docs/design.md §4.2, "Fold").

Plain convs with bias and no BN/activation:
    y  = fuse_p4(cat[upsample_p5(P5), P4])      # official: conv1(cat[mulit1(x[2]), x[1]])
    p3 = fuse_p3(cat[upsample_p4(y), P3])       # official: conv2(cat[mulit2(y), x[0]])
The official code evaluates `conv1(cat[mulit1(P5), P4])` a second time (`fea_p4`); it is the same
tensor, computed once here.
"""

from __future__ import annotations

import torch
from torch import nn

# Official name of each layer, for checkpoint converters.
OFFICIAL_NAMES = {
    "upsample_p5": "mulit1",
    "fuse_p4": "conv1",
    "upsample_p4": "mulit2",
    "fuse_p3": "conv2",
}


def _up_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    # Sequential(Upsample, Conv2d) keeps the official parameter names (`mulit1.1.weight`).
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1),
    )


class TopDownFold(nn.Module):
    """Fold (P3, P4, P5) -> (p3 folded, y, P5).

    Args:
        in_channels: channels of (P3, P4, P5), e.g. `(128, 256, 512)` for YOLOX-S.

    `forward((P3 [N,c3,H/8,W/8], P4 [N,c4,H/16,W/16], P5 [N,c5,H/32,W/32]))` returns
    `(p3 [N,c3,H/8,W/8], y [N,c4,H/16,W/16], P5)`; CHAL uses all three, the multi-frame baseline
    only p3.
    """

    def __init__(self, *, in_channels: tuple[int, int, int] = (128, 256, 512)):
        super().__init__()
        c3, c4, c5 = in_channels
        self.in_channels = tuple(in_channels)
        self.upsample_p5 = _up_conv(c5, c4)  # mulit1
        self.fuse_p4 = nn.Conv2d(2 * c4, c4, kernel_size=3, stride=1, padding=1)  # conv1
        self.upsample_p4 = _up_conv(c4, c3)  # mulit2
        self.fuse_p3 = nn.Conv2d(2 * c3, c3, kernel_size=3, stride=1, padding=1)  # conv2

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """`{"p3": (c3, 8), "p4": (c4, 16), "p5": (c5, 32)}`."""
        c3, c4, c5 = self.in_channels
        return {"p3": (c3, 8), "p4": (c4, 16), "p5": (c5, 32)}

    def forward(
        self, features: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3, p4, p5 = features
        y = self.fuse_p4(torch.cat([self.upsample_p5(p5), p4], dim=1))
        folded = self.fuse_p3(torch.cat([self.upsample_p4(y), p3], dim=1))
        return folded, y, p5
