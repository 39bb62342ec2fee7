"""Multi-frame baseline: CHAL without SNF, HAL and CRG (the "w/o All" row of CHAL's ablation).

All T frames go through the shared backbone + PAFPN as ONE folded batch `[B*T, 3, H, W]`; each
frame's (P3, P4, P5) is folded to stride 8 by `TopDownFold` (as CHAL does); the T stride-8 maps are
concatenated over time (oldest first) and fused by a 3x3 BaseConv; one YOLOX head level at stride 8.
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
from mistd.models.necks.fold import TopDownFold
from mistd.models.necks.pafpn import PAFPN


class MultiFrameBaseline(ClipDetectorModule):
    """Per-frame features folded to stride 8, fused over time, one stride-8 head.

    Args:
        backbone, neck, fold: shared per-frame feature extractor (applied to all frames at once).
        temporal_fusion: BaseConv mapping `T * c3` channels to the head's input channels.
        head: YOLOX head with one level at stride 8.
        criterion: assignment + loss.
        num_frames: T (the clip length this model was built for).
        bpfpn: optional BP-FPN on each frame's (P3, P4, P5) before the fold: GILS into the
            per-frame P3, DGR on the per-frame levels (`mistd.models.necks.bpfpn`).

    `forward(clip [B, T, 3, H, W]) -> [map [B, 5 + C, H/8, W/8]]`.
    """

    def __init__(
        self,
        *,
        backbone: CSPDarknet,
        neck: PAFPN,
        fold: TopDownFold,
        temporal_fusion: BaseConv,
        head: YOLOXHead,
        criterion: YOLOXCriterion,
        num_frames: int,
        bpfpn: BPFPN | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.fold = fold
        self.temporal_fusion = temporal_fusion
        self.head = head
        self.criterion = criterion
        self.num_frames = num_frames
        self.bpfpn = bpfpn

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame stride-8 features `[N, 3, H, W] -> [N, c3, H/8, W/8]` (cacheable per frame
        for streaming)."""
        folded, _, _ = self.fold(self.levels(frames))
        return folded

    def fuse(self, features: torch.Tensor) -> list[torch.Tensor]:
        """`[B, T, c3, h, w]` per-frame features (oldest first) -> head maps."""
        b, t, c, h, w = features.shape
        return self.head([self.temporal_fusion(features.reshape(b, t * c, h, w))])

    def forward_with_levels(
        self, clip: torch.Tensor
    ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        """`forward` plus the per-frame pyramid `(P3, P4, P5)`, each `[B*T, C_l, H_l, W_l]`."""
        levels = self.clip_levels(clip)
        features, _, _ = self.fold(levels)
        return self.fuse(features.unflatten(0, clip.shape[:2])), levels

    def forward(self, clip: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_levels(clip)[0]

    def loss(self, clip: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Criterion terms plus BP-FPN's DGR term (`"dgr"`, option A) when configured."""
        outputs, levels = self.forward_with_levels(clip)
        return add_pyramid_losses(self.bpfpn, self.criterion(outputs, targets), levels)

    def streaming_parts(self, fast_snf: bool = True) -> tuple[nn.Module, nn.Module]:
        """Per frame: the folded stride-8 features; per window: the fusion conv and head."""
        return BaselineFrameEncoder(self), BaselineClipHead(self)


class BaselineFrameEncoder(nn.Module):
    """`[N, 3, H, W] -> (stride-8 folded features [N, c3, H/8, W/8],)`."""

    def __init__(self, model: MultiFrameBaseline):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.model.frame_features(frames),)


class BaselineClipHead(nn.Module):
    """`[B, T, c3, h, w] -> head maps` (temporal fusion conv + head)."""

    def __init__(self, model: MultiFrameBaseline):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        return self.model.fuse(features)
