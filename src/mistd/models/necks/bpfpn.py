"""BP-FPN parts (arXiv 2511.13013, docs/design.md §4.4): the gradient-isolated low-level shortcut
(GILS) and the wrapper a host detector's pyramid passes through.

GILS (our documented reading; the paper's equations are not public):

    s   = down(C2.detach())          C2 = backbone dark2 [N, c2, H/4, W/4] -> [N, c3, H/8, W/8]
    P3' = P3 + fuse(s)               fuse = zero-initialised 1x1 conv (with bias)

- `down`: `unshuffle` (default) = PixelUnshuffle(2) (lossless space-to-depth, 4*c2 channels) then
  a 1x1 BaseConv to c3; `strided` = one 3x3 stride-2 BaseConv c2 -> c3.
- The detach isolates the backbone: nothing this path computes sends gradient into the stem or
  dark2, so their optimisation direction is the host's; `down` and `fuse` are trained by the loss
  through P3'. Variant `ls` (the vanilla low-level shortcut the paper argues against) is the same
  without the detach.
- `fuse` starts at zero, so at initialisation P3' == P3 bit for bit and training starts exactly at
  the host detector. (Its weight moves on the first step, after which `down` gets gradient.)

Which level is "the finest pyramid output": the PAFPN's P3 (stride 8) of each frame, before any
fold/fusion. For YOLOX that is the head's first level; for the multi-frame baseline and CHAL it is
the P3 of every frame of the folded batch `[B*T, ...]`, before `TopDownFold`.

`BPFPN` is applied by a host right after its neck: `levels = bpfpn(backbone_features, neck(...))`.
It adds the shortcut (if any) and, for DGR option B, routes the levels through the gradient
projection (`mistd.losses.dgr.project_conflicting_gradients`); for DGR option A it provides
`add_losses`, which the host's `loss` calls with the same levels.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from mistd.losses.dgr import direction_consistency_loss, project_conflicting_gradients
from mistd.models.blocks import BaseConv

ShortcutVariant = Literal["off", "gils", "ls"]
DownsampleKind = Literal["unshuffle", "strided"]
DGRMode = Literal["off", "a", "b"]


class LowLevelShortcut(nn.Module):
    """GILS (detached C2) or LS (not detached) branch: `C2 [N, c2, H/4, W/4] -> [N, c3, H/8, W/8]`,
    the residual added to P3 (zero at initialisation).

    Args:
        in_channels: channels of C2 (dark2; YOLOX-S: 64).
        out_channels: channels of P3 (YOLOX-S: 128).
        isolate: detach C2 (GILS); False = the vanilla shortcut LS.
        down: `unshuffle` (PixelUnshuffle(2) + 1x1 BaseConv) or `strided` (3x3 stride-2 BaseConv).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        isolate: bool = True,
        down: DownsampleKind = "unshuffle",
    ):
        super().__init__()
        if down == "unshuffle":
            self.down: nn.Module = nn.Sequential(
                nn.PixelUnshuffle(2), BaseConv(4 * in_channels, out_channels, 1, 1)
            )
        elif down == "strided":
            self.down = BaseConv(in_channels, out_channels, 3, 2)
        else:
            raise ValueError(f"unknown GILS downsampling {down!r}; expected unshuffle or strided")
        self.fuse = nn.Conv2d(out_channels, out_channels, kernel_size=1, bias=True)
        nn.init.zeros_(self.fuse.weight)
        nn.init.zeros_(self.fuse.bias)
        self.isolate = isolate

    def forward(self, c2: torch.Tensor) -> torch.Tensor:
        if self.isolate:
            # the isolation: no gradient from this branch reaches the stem / dark2
            c2 = c2.detach()
        return self.fuse(self.down(c2))


class BPFPN(nn.Module):
    """What a host's pyramid passes through: GILS/LS into P3, DGR option B's gradient projection,
    and DGR option A's loss term.

    Args:
        shortcut: the low-level shortcut, or None (no GILS/LS).
        dgr: `off`, `a` (direction-consistency loss added by `add_losses`) or `b` (gradient
            projection inside `forward`; forward values unchanged).
        dgr_weight: lambda of option A's term in `total`.
        low_level_feature: the backbone output the shortcut reads (`dark2`).

    `forward(features: dict name -> [N, C, H, W], levels: (P3, P4, P5)) -> (P3', P4, P5)`.
    """

    def __init__(
        self,
        *,
        shortcut: LowLevelShortcut | None = None,
        dgr: DGRMode = "off",
        dgr_weight: float = 0.1,
        low_level_feature: str = "dark2",
    ):
        super().__init__()
        if dgr not in ("off", "a", "b"):
            raise ValueError(f"unknown DGR mode {dgr!r}; expected off, a or b")
        self.shortcut = shortcut
        self.dgr = dgr
        self.dgr_weight = float(dgr_weight)
        self.low_level_feature = low_level_feature

    def forward(
        self,
        features: dict[str, torch.Tensor],
        levels: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3, p4, p5 = levels
        if self.shortcut is not None:
            p3 = p3 + self.shortcut(features[self.low_level_feature])
        if self.dgr == "b" and self.training:
            p3, p4, p5 = project_conflicting_gradients((p3, p4, p5))
        return p3, p4, p5

    def add_losses(
        self, losses: dict[str, torch.Tensor], levels: tuple[torch.Tensor, ...]
    ) -> dict[str, torch.Tensor]:
        """Add DGR option A to a criterion's output: `losses["dgr"]` (the unweighted term,
        detached, like the criterion's other terms) and `dgr_weight * term` into `"total"`.
        Other modes return `losses` unchanged."""
        if self.dgr != "a":
            return losses
        term = direction_consistency_loss(levels)
        losses = dict(losses)
        losses["total"] = losses["total"] + self.dgr_weight * term
        losses["dgr"] = term.detach()
        return losses


def add_pyramid_losses(
    bpfpn: BPFPN | None, losses: dict[str, torch.Tensor], levels: tuple[torch.Tensor, ...]
) -> dict[str, torch.Tensor]:
    """`bpfpn.add_losses(losses, levels)`, or `losses` when the host has no BP-FPN."""
    return losses if bpfpn is None else bpfpn.add_losses(losses, levels)
