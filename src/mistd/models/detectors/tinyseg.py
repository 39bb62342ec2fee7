"""TinySeg: a single-frame encoder-decoder that paints each target's box at full resolution.

The field's single-frame small-target networks (ACM, ALCNet, DNANet) segment targets pixel by
pixel instead of regressing boxes from a stride-8 grid; a 2-5 px target is a few pixels of the
output, not a fraction of one cell. TinySeg is the smallest such network that fits this toolkit:

- `forward(clip [B, T, 3, H, W]) -> [B, C, H, W]` logits, one map per class, from the key frame
  only (`clip[:, -1]`), which is first standardised by its own mean and spread (infrared
  cameras differ in gain and offset; a target is a local excess over its frame);
- `loss(clip, targets)`: every annotated box is painted into its class's map (the box, not a
  mask: every data set has boxes, and the painted map then follows each set's box convention);
  soft IoU per image plus `bce_weight` x binary cross-entropy per pixel (the soft IoU alone
  leaves frames without a target unpunished);
- `predict`: each local maximum of the map is a candidate, scored `sigmoid(logit / T)` at its
  peak (`score_temperature` T = 4: the probability's order, without its rounding to 1.0), kept
  above `decode_floor`; its box is the blob of pixels around it whose probability is above
  `mask_level` x the peak's (`mistd.boxes.blob_boxes`, numpy: the onnxruntime path decodes the
  exported graph's maps with it). A peak inside a box already kept is the same blob.

Widths: (16, 32, 64, 128) channels at strides 1, 2, 4, 8 (0.49 M parameters), receptive field
~ 70 px. `input_stride` s > 1 moves every level s times coarser without losing a pixel: the frame
enters as s x s sub-images stacked as channels (space to depth), and the last layer gives s x s
maps per class put back at full resolution (depth to space); s = 2 costs a quarter of the
arithmetic (full-resolution convolutions of 16 channels are memory-bound on a CPU).

Not streamed (one frame: nothing to cache); exported to ONNX as a deployable graph whose outputs
are the two maps of `blob_maps`, decoded to boxes outside the graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mistd.boxes import blob_detections
from mistd.models.detectors.base import check_clip
from mistd.structures import Detections
from mistd.thresholds import DECODE_FLOOR


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv + BN + ReLU at one resolution."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def standardize(frames: torch.Tensor, eps: float = 0.02) -> torch.Tensor:
    """`[B, 1, H, W]` -> the same, minus each image's mean, over its standard deviation + `eps`
    (`eps` ~ one grey level of an 8-bit frame after the model input's normalisation)."""
    mean = frames.mean(dim=(2, 3), keepdim=True)
    std = frames.std(dim=(2, 3), keepdim=True)
    return (frames - mean) / (std + eps)


def paint_boxes(targets: list[torch.Tensor], num_classes: int, height: int, width: int):
    """Per-image targets `[N_i, 5]` (cls, cx, cy, w, h; input pixels) -> `[B, C, H, W]` float
    maps with each box's pixels set to 1 (at least one pixel per box; clipped to the image)."""
    maps = torch.zeros(len(targets), num_classes, height, width)
    for i, boxes in enumerate(targets):
        for cls, cx, cy, w, h in boxes.detach().cpu().tolist():
            x0, x1 = round(cx - w / 2), round(cx + w / 2)
            y0, y1 = round(cy - h / 2), round(cy + h / 2)
            x0, y0 = max(0, min(x0, width - 1)), max(0, min(y0, height - 1))
            x1, y1 = min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1))
            maps[i, int(cls), y0:y1, x0:x1] = 1.0
    return maps


class TinySeg(nn.Module):
    """Encoder-decoder (U-Net) painting target boxes; see the module docstring.

    Args:
        num_classes: output maps (one per class).
        widths: channels at strides 1, 2, 4, 8, ... (one entry per level).
        bce_weight: weight of the per-pixel cross-entropy beside the soft IoU.
        mask_level: a blob is the pixels above this fraction of its peak.
        max_detections: boxes kept per image and class.
        score_temperature: a detection's score is `sigmoid(logit / score_temperature)` at its
            peak: the same order as the probability, but confident peaks keep distinct scores
            (the probability of a trained model rounds to exactly 1.0 for many of them, and a
            threshold cannot rank what it cannot tell apart).
        input_stride: stride of the first level (space to depth in, depth to space out).
    """

    num_frames = 1
    frame_stride = 1

    def __init__(
        self,
        num_classes: int = 1,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        bce_weight: float = 10.0,
        mask_level: float = 0.5,
        max_detections: int = 100,
        score_temperature: float = 4.0,
        input_stride: int = 1,
    ):
        super().__init__()
        self.input_stride = int(input_stride)
        self.score_temperature = float(score_temperature)
        self.num_classes = int(num_classes)
        self.bce_weight = float(bce_weight)
        self.mask_level = float(mask_level)
        self.max_detections = int(max_detections)
        self.encoder = nn.ModuleList(
            [conv_block(self.input_stride**2, widths[0])]
            + [conv_block(widths[i - 1], widths[i]) for i in range(1, len(widths))]
        )
        self.decoder = nn.ModuleList(
            [conv_block(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 1)]
        )
        self.out = nn.Conv2d(widths[0], self.num_classes * self.input_stride**2, 1)
        nn.init.constant_(self.out.bias, -4.0)  # start near "no target" (p ~ 0.02)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (one halving per encoder level, after the
        first level's stride)."""
        return self.input_stride * 2 ** (len(self.encoder) - 1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """`clip [B, T, 3, H, W]` (key frame last) -> logits `[B, C, H, W]`."""
        check_clip(clip)
        multiple = self.size_multiple
        if clip.shape[-2] % multiple or clip.shape[-1] % multiple:
            raise ValueError(f"input sides must be multiples of {multiple}, got {clip.shape[-2:]}")
        return self.logits(clip[:, -1, :1])

    def logits(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised gray key frames `[B, 1, H, W]` -> logits `[B, C, H, W]` (no checks: the
        export traces it)."""
        x = standardize(frames)
        if self.input_stride > 1:
            x = F.pixel_unshuffle(x, self.input_stride)  # [B, s*s, H/s, W/s]
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for i in range(len(self.decoder) - 1, -1, -1):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = self.decoder[i](torch.cat([x, skips[i]], dim=1))
        x = self.out(x)
        return F.pixel_shuffle(x, self.input_stride) if self.input_stride > 1 else x

    def loss(self, clip: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Soft IoU + `bce_weight` x BCE against the painted boxes.

        Args:
            clip: `[B, T, 3, H, W]`.
            targets: per image `[N_i, 5]` (cls, cx, cy, w, h) in input pixels.
        """
        logits = self.forward(clip)
        painted = paint_boxes(targets, self.num_classes, *logits.shape[-2:]).to(logits)
        prob = torch.sigmoid(logits)
        intersection = (prob * painted).sum(dim=(1, 2, 3))
        union = (prob + painted - prob * painted).sum(dim=(1, 2, 3))
        soft_iou = (1.0 - (intersection + 1.0) / (union + 1.0)).mean()
        bce = F.binary_cross_entropy_with_logits(logits, painted)
        return {
            "total": soft_iou + self.bce_weight * bce,
            "soft_iou": soft_iou.detach(),
            "bce": bce.detach(),
            "num_fg": painted.sum().detach(),
        }

    def blob_maps(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits `[B, C, H, W]` -> `(prob, score)`, each `[B, C, H, W]`: the probability and the
        tempered score (`sigmoid(logit / score_temperature)`) a detection is decoded from."""
        logits = logits.float()
        return torch.sigmoid(logits), torch.sigmoid(logits / self.score_temperature)

    @torch.no_grad()
    def predict(
        self, clip: torch.Tensor, decode_floor: float = DECODE_FLOOR, nms_iou: float = 0.65
    ) -> list[Detections]:
        """Detections of each key frame (boxes xyxy in input pixels; `nms_iou` unused: one box
        per blob). Call `.eval()` first."""
        logits = self.forward(clip).float()  # fp32 maps also under bf16 autocast
        probs, tempered = (m.cpu().numpy() for m in self.blob_maps(logits))
        out = []
        for prob, score in zip(probs, tempered, strict=True):
            boxes, scores, labels = blob_detections(
                prob, score, decode_floor, self.mask_level, self.max_detections
            )
            out.append(
                Detections(
                    torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(labels)
                )
            )
        return out
