"""Single-frame YOLOX detector on clips: only the key frame `clip[:, -1]` is used."""

from __future__ import annotations

import torch
from torch import nn

from mistd.losses.criterion import YOLOXCriterion
from mistd.models.backbones.cspdarknet import CSPDarknet
from mistd.models.detectors.base import ClipDetectorModule, check_clip
from mistd.models.heads.yolox_head import YOLOXHead
from mistd.models.necks.bpfpn import BPFPN, add_pyramid_losses
from mistd.models.necks.p2 import StrideFourLevel
from mistd.models.necks.pafpn import PAFPN


class YOLOXDetector(ClipDetectorModule):
    """Backbone -> PAFPN (-> BP-FPN) -> YOLOX head on the key frame (the single-frame reference).

    `bpfpn` (optional): GILS into P3 and DGR on (P3, P4, P5) (`mistd.models.necks.bpfpn`); the
    backbone must then also return `dark2` when a shortcut is used.

    `p2` (optional): a stride-4 level (`mistd.models.necks.p2`), appended after P5.

    `forward(clip [B, T, 3, H, W]) -> [P3 map, P4 map, P5 map(, P2 map)]`, each
    `[B, 5 + C, H/s, W/s]`.
    """

    def __init__(
        self,
        *,
        backbone: CSPDarknet,
        neck: PAFPN,
        head: YOLOXHead,
        criterion: YOLOXCriterion,
        num_frames: int = 1,
        bpfpn: BPFPN | None = None,
        p2: StrideFourLevel | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.criterion = criterion
        self.num_frames = num_frames
        self.bpfpn = bpfpn
        self.p2 = p2

    def forward(self, clip: torch.Tensor) -> list[torch.Tensor]:
        check_clip(clip)
        return self.head(list(self.levels(clip[:, -1])))

    def loss(self, clip: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Criterion terms plus BP-FPN's DGR term (`"dgr"`, option A) when configured."""
        check_clip(clip)
        levels = self.levels(clip[:, -1])
        losses = self.criterion(self.head(list(levels)), targets)
        return add_pyramid_losses(self.bpfpn, losses, levels[:3])

    def streaming_parts(self, fast_snf: bool = True) -> tuple[nn.Module, nn.Module]:
        """The whole detector per frame; the clip head keeps the key frame's maps."""
        return YOLOXFrameEncoder(self), KeyFrameHead()


class YOLOXFrameEncoder(nn.Module):
    """Single-frame YOLOX: the whole detector runs per frame. `[N, 3, H, W] -> head maps`."""

    def __init__(self, model: YOLOXDetector):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # `levels` = backbone + PAFPN (+ BP-FPN's shortcut when the model has one)
        return tuple(self.model.head(list(self.model.levels(frames))))


class KeyFrameHead(nn.Module):
    """Clip head of a single-frame model: the key frame's maps. `[B, T, ...] x L -> L maps`."""

    def forward(self, *features: torch.Tensor) -> list[torch.Tensor]:
        return [f[:, -1] for f in features]
