"""A stride-4 pyramid level (P2) for tiny targets.

At stride 8 a 2-5 px target covers less than one cell of P3, and the backbone's stride-8 features
have already averaged it with its surroundings. `StrideFourLevel` brings the stride-4 backbone
stage (C2, `dark2`) back: P3 is reduced and upsampled, concatenated with C2 and fused by a CSP
layer, the same top-down step the PAFPN takes from P4 to P3. The head then predicts on one more
level, at stride 4.

Detectors append P2 AFTER P3-P5 (head levels `(P3, P4, P5, P2)`, strides `(8, 16, 32, 4)`): the
head's per-level layers of P3-P5 keep their indices, so a checkpoint without P2 loads into every
other part unchanged (`mistd train --init yolox-ir-s model.p2=true`). Decoding, assignment and
loss do not depend on the order of the levels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mistd.models.blocks import BaseConv, CSPLayer


class StrideFourLevel(nn.Module):
    """P2 from C2 (stride 4) and P3 (stride 8).

    Args:
        c2_channels: channels of the backbone's stride-4 stage (`dark2`).
        p3_channels: channels of P3.
        out_channels: channels of P2.
        depth: depth multiplier (CSP blocks = round(3 * depth)), as the PAFPN.

    `forward(c2 [N, c2, H/4, W/4], p3 [N, c3, H/8, W/8]) -> P2 [N, out, H/4, W/4]`.
    """

    def __init__(self, *, c2_channels: int, p3_channels: int, out_channels: int, depth: float):
        super().__init__()
        self.reduce_p3 = BaseConv(p3_channels, out_channels, 1, 1)
        self.fuse = CSPLayer(
            out_channels + c2_channels, out_channels, num_blocks=round(3 * depth), shortcut=False
        )
        self.out_channels = out_channels

    def forward(self, c2: torch.Tensor, p3: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.reduce_p3(p3), scale_factor=2.0, mode="nearest")
        return self.fuse(torch.cat([up, c2], dim=1))
