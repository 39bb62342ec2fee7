"""Single-frame YOLOX detector on clips: only the key frame `clip[:, -1]` is used."""

from __future__ import annotations

import torch

from mistd.losses.criterion import YOLOXCriterion
from mistd.models.backbones.cspdarknet import CSPDarknet
from mistd.models.detectors.base import ClipDetectorModule, check_clip
from mistd.models.heads.yolox_head import YOLOXHead
from mistd.models.necks.pafpn import PAFPN


class YOLOXDetector(ClipDetectorModule):
    """Backbone -> PAFPN -> YOLOX head on the key frame (the single-frame reference).

    `forward(clip [B, T, 3, H, W]) -> [P3 map, P4 map, P5 map]`, each `[B, 5 + C, H/s, W/s]`.
    """

    def __init__(
        self,
        *,
        backbone: CSPDarknet,
        neck: PAFPN,
        head: YOLOXHead,
        criterion: YOLOXCriterion,
        num_frames: int = 1,
    ):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.criterion = criterion
        self.num_frames = num_frames

    def forward(self, clip: torch.Tensor) -> list[torch.Tensor]:
        check_clip(clip)
        return self.head(self.neck(self.backbone(clip[:, -1])))
