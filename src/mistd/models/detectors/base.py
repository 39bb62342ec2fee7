"""Base class of learned clip detectors: three jobs, three methods (docs/design.md §2).

- `forward(clip [B, T, 3, H, W]) -> list of raw head maps [B, 5 + C, h_i, w_i]` (exportable);
- `loss(clip, targets) -> dict[str, Tensor]` with key `"total"` (the criterion's output);
- `predict(clip, decode_floor, nms_iou) -> list[Detections]`, boxes xyxy in INPUT pixels.

Subclasses implement `forward` and set `self.head` (a YOLOX head with `strides`),
`self.criterion` and `self.num_frames`.
"""

from __future__ import annotations

import torch
from torch import nn

from mistd.decoding import decode_outputs
from mistd.losses.criterion import YOLOXCriterion
from mistd.models.heads.yolox_head import YOLOXHead
from mistd.models.ops import postprocess
from mistd.structures import Detections
from mistd.thresholds import DECODE_FLOOR


def check_clip(clip: torch.Tensor) -> None:
    """Raise ValueError unless `clip` is `[B, T, 3, H, W]` (shape only, never data)."""
    if clip.dim() != 5 or clip.shape[2] != 3:
        raise ValueError(f"expected a clip [B, T, 3, H, W], got shape {tuple(clip.shape)}")


class ClipDetectorModule(nn.Module):
    """Common `levels`/`loss`/`predict` on top of a subclass's `forward`.

    Attributes:
        backbone, neck: per-frame CSPDarknet and PAFPN.
        bpfpn: BP-FPN applied to the pyramid, or None.
        head: the YOLOX head (its `strides` decode the outputs).
        criterion: assignment + loss (not an `nn.Module`: it has no parameters or buffers).
        num_frames: frames per clip the model expects (1 for single-frame models).
        p2: optional stride-4 level (`mistd.models.necks.p2`), appended after P3-P5; hosts
            without one may leave it unset.
        frame_stride: frames between its clip frames in the video (1 = consecutive; set by
            `mistd.models.zoo.build_model` from the config). The model itself only sees T
            frames; samplers and streaming windows space them.
    """

    head: YOLOXHead
    criterion: YOLOXCriterion
    num_frames: int
    frame_stride: int = 1

    @property
    def strides(self) -> tuple[int, ...]:
        return self.head.strides

    @property
    def num_classes(self) -> int:
        return int(self.head.num_classes)

    def min_export_size(self) -> tuple[int, int]:
        """Smallest input (H, W) for which a traced (ONNX-exported) graph computes what the
        module does: (32, 32) here, a model whose forward takes a size-dependent Python decision
        raises it (`mistd.inference.export` checks it; H and W are multiples of 32 anyway)."""
        return 32, 32

    def streaming_parts(self, fast_snf: bool = True) -> tuple[nn.Module, nn.Module]:
        """`(frame_encoder, clip_head)`: the model split for streaming (`mistd.inference.streaming`:
        the per-frame part computed once per frame and cached, the clip part run on the cached
        window; together equal to `forward`). A family that streams defines it beside its model;
        this default has no split (TypeError)."""
        raise TypeError(f"no streaming decomposition for {type(self).__name__}")

    def pyramid(self, frames: torch.Tensor) -> tuple[dict, tuple[torch.Tensor, ...]]:
        """`(backbone features by stage name, (P3, P4, P5))` of frames `[N, 3, H, W]`, the
        pyramid after BP-FPN when present."""
        features = self.backbone(frames)
        levels = self.neck(features)
        if self.bpfpn is not None:
            levels = self.bpfpn(features, levels)
        return features, levels

    def levels(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-frame pyramid `(P3, P4, P5)` of frames `[N, 3, H, W]` (after BP-FPN when present),
        plus P2 (stride 4) last when the model has that level."""
        features, levels = self.pyramid(frames)
        # not a class attribute: nn.Module registers submodules per instance, and a class-level
        # None would shadow the registered one
        p2 = self._modules.get("p2")
        if p2 is not None:
            levels = (*levels, p2(features["dark2"], levels[0]))
        return levels

    def clip_levels(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-frame pyramid of all T frames of `clip [B, T, 3, H, W]` as ONE batch: `(P3, P4,
        P5[, P2])`, each `[B*T, C_l, H_l, W_l]` (frame-major within a clip). Raises ValueError
        unless T is the model's `num_frames`."""
        check_clip(clip)
        t = clip.shape[1]
        if t != self.num_frames:
            raise ValueError(f"this model fuses {self.num_frames} frames, got a clip of {t}")
        return self.levels(clip.flatten(0, 1))

    def loss(self, clip: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training loss of a clip batch.

        Args:
            clip: `[B, T, 3, H, W]`.
            targets: per image `[N_i, 5]` (cls, cx, cy, w, h) in input pixels.
        """
        return self.criterion(self.forward(clip), targets)

    @torch.no_grad()
    def decode(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        """Raw maps -> `[B, A, 5 + C]` (cx, cy, w, h input pixels, obj prob, class probs)."""
        return decode_outputs(outputs, self.strides)

    @torch.no_grad()
    def predict(
        self, clip: torch.Tensor, decode_floor: float = DECODE_FLOOR, nms_iou: float = 0.65
    ) -> list[Detections]:
        """Detections of each key frame (boxes xyxy in input pixels). Call `.eval()` first:
        like any module, BatchNorm/Dropout follow the module's mode."""
        # fp32 decoding also under bf16 autocast (box centres of a 640-px frame need it)
        decoded = self.decode([o.float() for o in self.forward(clip)])
        return postprocess(decoded, decode_floor=decode_floor, nms_iou=nms_iou)
