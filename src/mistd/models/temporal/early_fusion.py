"""Early fusion: a frame's three pyramid levels -> one stride-8 map (CHAL, docs/design.md §4.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mistd.models.attention import CBAM
from mistd.models.blocks import BaseConv


class EarlyFusion(nn.Module):
    """Bring (stride 8, 16, 32) features to stride 8 and `out_channels`, concat, fuse, CBAM.

    Official `EarlyFusionModule`: the stride-16 and stride-32 levels are upsampled FIRST (bilinear,
    `align_corners=False`, x2 and x4) and then go through their 3x3 BaseConv; the concat (3 x out)
    goes through BaseConv 3x3 -> 2*out, BaseConv 3x3 -> out, then CBAM.

    The official module then resizes an upsampled level to p3's size when the two differ. They
    never do: the inputs of every model are multiples of 32 (the PAFPN's concatenations require
    it), so p4 x2 and p5 x4 have p3's size exactly. That fallback is not carried over, as its
    Python comparison of sizes would be traced as a constant in an ONNX export.

    Args:
        in_channels: channels of the (stride 8, 16, 32) inputs (official: 128, 256, 512).
        out_channels: fused channels (official: 128).

    `forward(p3 [N, C8, h, w], p4 [N, C16, h/2, w/2], p5 [N, C32, h/4, w/4]) -> [N, out, h, w]`;
    N is any batch (CHAL folds frames into it).
    """

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int):
        super().__init__()
        c8, c16, c32 = in_channels
        self.align_p3 = BaseConv(c8, out_channels, 3, 1)
        self.align_p4 = BaseConv(c16, out_channels, 3, 1)
        self.align_p5 = BaseConv(c32, out_channels, 3, 1)
        self.fuse = nn.Sequential(
            BaseConv(3 * out_channels, 2 * out_channels, 3, 1),
            BaseConv(2 * out_channels, out_channels, 3, 1),
        )
        self.attention = CBAM(out_channels)

    def forward(self, p3: torch.Tensor, p4: torch.Tensor, p5: torch.Tensor) -> torch.Tensor:
        levels = [
            self.align_p3(p3),
            self.align_p4(_upsample(p4, 2)),
            self.align_p5(_upsample(p5, 4)),
        ]
        return self.attention(self.fuse(torch.cat(levels, dim=1)))


def _upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    # nn.Upsample(scale_factor=factor, mode="bilinear", align_corners=False) in the official code;
    # given the scale factor (not the output size) so that the sampling grid is identical.
    return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)
