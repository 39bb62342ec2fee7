"""Multi-frame residual detector: YOLOX on the key frame plus a learned temporal residual on P3.

Why it exists: the CHAL-style multi-frame models (`mf-baseline`, `chal`) fold the pyramid into one
fresh stride-8 head, so a pretrained single-frame YOLOX transfers only its backbone and PAFPN;
at CPU budgets the fresh fold + head cost more than the frames bring (docs/results.md, "Learned
models on real footage").
Here every part of the single-frame model keeps its name and shape (`backbone`, `neck`, `head`,
three levels), and the frames enter through ONE extra module whose last conv starts at zero:

    P3_key' = P3_key + motion(cat[P3_key, P3_key - P3_{T-2}, ..., P3_key - P3_0])

so at initialisation the model IS the single-frame detector it is loaded from, and fine-tuning
can only add what the past frames bring (differences of per-frame features cancel the static
background; a moving target leaves a signed pair). P4 and P5 are the key frame's.

`forward(clip [B, T, 3, H, W]) -> [P3 map, P4 map, P5 map]`, each `[B, 5 + C, H/s, W/s]`.
"""

from __future__ import annotations

import torch
from torch import nn

from mistd.losses.criterion import YOLOXCriterion
from mistd.models.backbones.cspdarknet import CSPDarknet
from mistd.models.blocks import BaseConv
from mistd.models.detectors.base import ClipDetectorModule
from mistd.models.heads.yolox_head import YOLOXHead
from mistd.models.necks.bpfpn import BPFPN, add_pyramid_losses
from mistd.models.necks.pafpn import PAFPN


class TemporalResidual(nn.Module):
    """`[B, T, C, h, w]` per-frame P3 (oldest first) -> residual `[B, C, h, w]` for the key frame.

    Two 3x3 BaseConvs on the key map and its differences to the T-1 past maps, then a 1x1 conv
    initialised to zero (the residual is 0 until training moves it).
    """

    def __init__(self, channels: int, num_frames: int):
        super().__init__()
        self.num_frames = num_frames
        self.mix = nn.Sequential(
            BaseConv(num_frames * channels, channels, 3, 1),
            BaseConv(channels, channels, 3, 1),
        )
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, p3: torch.Tensor) -> torch.Tensor:
        key = p3[:, -1]
        past = p3[:, :-1].flip(1)  # newest past frame first
        diffs = (key.unsqueeze(1) - past).flatten(1, 2)
        return self.out(self.mix(torch.cat([key, diffs], dim=1)))


class MultiFrameResidual(ClipDetectorModule):
    """Single-frame YOLOX (same parameter names) + `TemporalResidual` on the key frame's P3.

    Args:
        backbone, neck, head, criterion: as `YOLOXDetector` (a yolox-s checkpoint loads into them).
        temporal: the residual on P3.
        num_frames: T (>= 2: with one frame there is nothing to difference).
        bpfpn: optional BP-FPN on each frame's pyramid.
    """

    def __init__(
        self,
        *,
        backbone: CSPDarknet,
        neck: PAFPN,
        temporal: TemporalResidual,
        head: YOLOXHead,
        criterion: YOLOXCriterion,
        num_frames: int,
        bpfpn: BPFPN | None = None,
        p2: nn.Module | None = None,
    ):
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"the temporal residual needs num_frames >= 2, got {num_frames}")
        self.backbone = backbone
        self.neck = neck
        self.temporal = temporal
        self.head = head
        self.criterion = criterion
        self.num_frames = num_frames
        self.bpfpn = bpfpn
        self.p2 = p2

    def fuse(self, p3: torch.Tensor, *rest: torch.Tensor) -> list[torch.Tensor]:
        """Per-frame levels `(P3, P4, P5[, P2])` stacked over time `[B, T, C_l, H_l, W_l]` (oldest
        first) -> head maps. Only P3 is read for the past frames; the other levels are the key
        frame's."""
        key_p3 = p3[:, -1] + self.temporal(p3)
        return self.head([key_p3, *(level[:, -1] for level in rest)])

    def forward_with_levels(
        self, clip: torch.Tensor
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        """`forward` plus the per-frame pyramid `(P3, P4, P5[, P2])`, each
        `[B*T, C_l, H_l, W_l]`."""
        levels = self.clip_levels(clip)
        return self.fuse(*(level.unflatten(0, clip.shape[:2]) for level in levels)), levels

    def forward(self, clip: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_levels(clip)[0]

    def loss(self, clip: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Criterion terms plus BP-FPN's DGR term (`"dgr"`, option A) when configured."""
        outputs, levels = self.forward_with_levels(clip)
        return add_pyramid_losses(self.bpfpn, self.criterion(outputs, targets), levels[:3])

    def streaming_parts(self, fast_snf: bool = True) -> tuple[nn.Module, nn.Module]:
        """Per frame: the pyramid; per window: the temporal residuals and head."""
        return PyramidFrameEncoder(self), ResidualClipHead(self)


class PyramidFrameEncoder(nn.Module):
    """Per-frame pyramid of a multi-frame residual model. `[N, 3, H, W] -> (P3, P4, P5[, P2])`."""

    def __init__(self, model: MultiFrameResidual):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.levels(frames))


class ResidualClipHead(nn.Module):
    """`(P3, P4, P5[, P2])`, each `[B, T, C_l, H_l, W_l]` -> head maps (as `fuse`)."""

    def __init__(self, model: MultiFrameResidual):
        super().__init__()
        self.model = model

    def forward(self, p3: torch.Tensor, *rest: torch.Tensor) -> list[torch.Tensor]:
        return self.model.fuse(p3, *rest)
