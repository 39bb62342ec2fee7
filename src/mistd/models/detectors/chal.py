"""CHAL: background-centred moving infrared small target detector (CVPR 2026).

Design notes: docs/design.md §4.2 (the official code) and §4.3 (the paper's variant).

Pipeline of one clip `[B, T, 3, H, W]` (key frame last):
1. per-frame features, all frames as ONE folded batch `[B*T, ...]` (the official code loops over
   frames): CSPDarknet + PAFPN, `TopDownFold` to (p3 /8, y /16, P5 /32), `EarlyFusion` + CBAM ->
   fused `F_k [B*T, C, h, w]` (h, w = H/8, W/8);
2. SNF: the background of frame k is predicted from the repeat-padded prefix
   `[F_0..F_k] + [F_k] * (T-1-k)` (frame T-1 from the whole clip); the T evaluations run as ONE
   batched call (stacked along the batch), and the Conv3d layers that read the T padded volumes
   are assembled from per-frame temporal taps (each distinct frame convolved once per tap);
3. HAL: appearance anomaly of every frame (folded), then 3D-Swin motion verification -> anomaly
   `[B, 1, h, w]`;
4. CRG: gate the key frame's fused feature by the anomaly, refine;
5. YOLOX head at stride 8; with `p2` (a switch for 2-5 px targets, not in the paper) a second
   head level at stride 4, from the key frame's backbone stage C2 (`dark2`) and the gated
   stride-8 feature (`mistd.models.necks.p2.StrideFourLevel`).

Every step is per-sample in eval mode, so folding frames and stacking the SNF evaluations changes
nothing there (the fidelity tests check it against the official outputs and against per-frame
loops). In train mode BatchNorm statistics are computed over the folded batch (B*T frames, or the
T*B SNF volumes) instead of per frame/call as in the official loop: a deliberate difference.

Ablations (`snf`, `hal`, `crg` switches, docs/design.md §4.3; what replaces each part):
- `snf=False`: the background of frame k is the temporal MEAN of its padded prefix volume (the
  classical background estimate the field replaces; no parameters).
- `hal=False`: the anomaly is the reconstruction residual of the key frame,
  `||F_key - B_key||_2` over channels, min-max normalised per sample (the official SNF computes this
  residual as `reconstruction_residual`, normalised over the whole batch there; per sample here) —
  no LayerNorm/cosine/refinement, no Swin. Only the key frame's background is computed.
- `snf=False, hal=False`: no anomaly at all (nothing models the background).
- `crg=False`: `F_g = F_key * (1 + A)` (plain amplification, no mask, no threshold, no
  refinement), or `F_key` when there is no anomaly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mistd.losses.criterion import YOLOXCriterion
from mistd.models.backbones.cspdarknet import CSPDarknet
from mistd.models.detectors.base import ClipDetectorModule
from mistd.models.heads.yolox_head import YOLOXHead
from mistd.models.necks.bpfpn import BPFPN, add_pyramid_losses
from mistd.models.necks.fold import TopDownFold
from mistd.models.necks.p2 import StrideFourLevel
from mistd.models.necks.pafpn import PAFPN
from mistd.models.ops import postprocess
from mistd.models.temporal.appearance_anomaly import AppearanceAnomaly
from mistd.models.temporal.background_field import NeuralBackgroundField
from mistd.models.temporal.causal_gate import CausalGate
from mistd.models.temporal.early_fusion import EarlyFusion
from mistd.models.temporal.motion_verification import MotionVerification
from mistd.structures import Detections
from mistd.thresholds import DECODE_FLOOR


def prefix_indices(num_frames: int) -> torch.Tensor:
    """`[T, T]`: row k lists the frames of frame k's padded prefix, `min(j, k)` for j < T
    (official: `feat_sequence[:k+1] + [feat_sequence[k]] * (T-1-k)`)."""
    j = torch.arange(num_frames)
    return torch.minimum(j[None, :], j[:, None])


def normalized_residual(features: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """`||F - B||_2` over channels, min-max normalised per sample.

    `[B, C, h, w]` x2 -> `[B, 1, h, w]` in [0, 1].
    """
    residual = torch.linalg.vector_norm(features - background, dim=1, keepdim=True)
    low = residual.amin(dim=(1, 2, 3), keepdim=True)
    high = residual.amax(dim=(1, 2, 3), keepdim=True)
    return (residual - low) / (high - low + 1e-8)


class CHAL(ClipDetectorModule):
    """CHAL detector (see module docstring).

    Args:
        backbone, neck, fold: per-frame YOLOX-S features folded to (/8, /16, /32).
        early_fusion: per-frame fusion to one stride-8 map of `channels`.
        background_field: the SNF, or None (`snf=False`: temporal-mean background).
        appearance_anomaly, motion_verification: HAL, or both None (`hal=False`).
        gate: the CRG, or None (`crg=False`).
        head: YOLOX head with one level at stride 8 (two, strides 8 and 4, with `stride_four`).
        criterion: assignment + loss.
        num_frames: T. per_frame_time: the paper's time coordinate (frame k of T at
            `t = k / (T-1)`, scaled by the field's alpha); False = the official constant t = 1.
        stride_four: the stride-4 head level (`StrideFourLevel` of the key frame's C2 and the
            gated stride-8 feature), or None (the official model).

    `forward(clip [B, T, 3, H, W]) -> [map [B, 5 + num_classes, H/8, W/8]]` (plus the stride-4
    map `[B, 5 + num_classes, H/4, W/4]` with `stride_four`).
    """

    def __init__(
        self,
        *,
        backbone: CSPDarknet,
        neck: PAFPN,
        fold: TopDownFold,
        early_fusion: EarlyFusion,
        background_field: NeuralBackgroundField | None,
        appearance_anomaly: AppearanceAnomaly | None,
        motion_verification: MotionVerification | None,
        gate: CausalGate | None,
        head: YOLOXHead,
        criterion: YOLOXCriterion,
        num_frames: int,
        per_frame_time: bool = False,
        bpfpn: BPFPN | None = None,
        stride_four: StrideFourLevel | None = None,
    ):
        super().__init__()
        if (appearance_anomaly is None) != (motion_verification is None):
            raise ValueError("appearance_anomaly and motion_verification come together (HAL)")
        self.backbone = backbone
        self.neck = neck
        self.fold = fold
        self.early_fusion = early_fusion
        self.background_field = background_field
        self.appearance_anomaly = appearance_anomaly
        self.motion_verification = motion_verification
        self.gate = gate
        self.head = head
        self.criterion = criterion
        self.num_frames = num_frames
        self.per_frame_time = per_frame_time
        # BP-FPN (optional): GILS into each frame's P3 and DGR on its (P3, P4, P5), before the fold
        self.bpfpn = bpfpn
        # not named `p2`: the base class would append it to every frame's pyramid, where CHAL's
        # level reads the gated key-frame feature after the temporal parts
        self.stride_four = stride_four
        self.register_buffer("prefix_index", prefix_indices(num_frames), persistent=False)

    def min_export_size(self) -> tuple[int, int]:
        """Smallest input (H, W) of an exported graph: the Swin layers of the motion verification
        keep their configured window there (`SwinLayer3D.min_size`, on the fused stride-8 maps),
        rounded up to a multiple of 32. (32, 32) without HAL."""
        if self.motion_verification is None:
            return super().min_export_size()
        stride = self.head.strides[0]  # the fused maps are the head's input
        h, w = self.motion_verification.min_size()
        return _multiple_of_32(h * stride), _multiple_of_32(w * stride)

    # ----------------------------------------------------------------------------- the stages
    def levels(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-frame `(P3, P4, P5)` of frames `[N, 3, H, W]` (after BP-FPN when present), plus
        the backbone's stride-4 stage C2 `[N, c2, H/4, W/4]` last with `stride_four`."""
        features, levels = self.pyramid(frames)
        if self.stride_four is not None:
            levels = (*levels, features["dark2"])
        return levels

    def frame_parts(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-frame work of independent frames `[N, 3, H, W]` (cacheable for streaming): `(fused
        [N, C, H/8, W/8],)`, plus C2 `[N, c2, H/4, W/4]` with `stride_four`."""
        levels = self.levels(frames)
        fused = self.early_fusion(*self.fold(levels[:3]))
        return (fused, *levels[3:])

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Fused stride-8 features of independent frames `[N, 3, H, W] -> [N, C, H/8, W/8]`."""
        return self.frame_parts(frames)[0]

    def head_outputs(self, neck: torch.Tensor, c2: torch.Tensor | None) -> list[torch.Tensor]:
        """Head maps of the gated key-frame feature `neck [B, C, h, w]` (and, with
        `stride_four`, of the stride-4 level built from the key frame's C2 `[B, c2, 2h, 2w]`)."""
        if self.stride_four is None:
            return self.head([neck])
        return self.head([neck, self.stride_four(c2, neck)])

    def backgrounds(self, fused: torch.Tensor, frames: list[int] | None = None) -> torch.Tensor:
        """Predicted background of frames `frames` (default all) of each clip.

        `fused [B, T, C, h, w] -> [B, len(frames), C, h, w]`; all evaluations in one batched call.
        """
        b, t, c, h, w = fused.shape
        frames = list(range(t)) if frames is None else frames
        index = self.prefix_index[frames]  # [K, T]
        k = index.shape[0]
        if self.background_field is None:
            return fused[:, index].mean(dim=2)  # [B, K, C, h, w]
        times = None
        if self.per_frame_time:
            frame_ids = torch.tensor(frames, device=fused.device, dtype=fused.dtype)
            times = (frame_ids / max(t - 1, 1)).repeat_interleave(b)
        # The K volumes are never built: their Conv3d layers are assembled from per-frame
        # temporal taps (the same result as the official per-volume calls, less arithmetic).
        background = self.background_field(fused, times, index=index)
        return background.reshape(k, b, c, h, w).transpose(0, 1)

    def temporal(
        self, fused: torch.Tensor, backgrounds: Callable[..., torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Background modelling, anomaly and gate on fused features `[B, T, C, h, w]`
        (T = `num_frames`).

        Returns a dict with `neck` (the head's input `[B, C, h, w]`) and the intermediate maps that
        exist in this configuration: `background [B, T or 1, C, h, w]`, `appearance_anomaly
        [B, T, 1, h, w]`, `anomaly [B, 1, h, w]` (the verified anomaly before the gate's clamp),
        `gate [B, 1, h, w]` (the amplifier H).

        `backgrounds(fused, frames=None)`: replaces `self.backgrounds` (same contract; the
        streaming predictor passes one that sums cached per-frame Conv3d taps).
        """
        b, t, c, h, w = fused.shape
        compute_backgrounds = self.backgrounds if backgrounds is None else backgrounds
        key = fused[:, -1]
        maps: dict[str, torch.Tensor] = {}
        anomaly = None
        if self.appearance_anomaly is not None and self.motion_verification is not None:
            background = compute_backgrounds(fused)
            appearance = self.appearance_anomaly(
                fused.reshape(b * t, c, h, w), background.reshape(b * t, c, h, w)
            ).reshape(b, t, 1, h, w)
            anomaly = self.motion_verification(appearance)
            maps.update(background=background, appearance_anomaly=appearance)
        elif self.background_field is not None:
            # the key frame as T - 1 from the model's T (= t): a plain number, where t would be a
            # traced size in an ONNX export
            background = compute_backgrounds(fused, [self.num_frames - 1])
            anomaly = normalized_residual(key, background[:, -1])
            maps["background"] = background
        if anomaly is not None:
            maps["anomaly"] = anomaly
        if self.gate is not None:
            if anomaly is None:
                anomaly = torch.zeros_like(key[:, :1])
            neck, gain = self.gate(key, anomaly)
            maps["gate"] = gain
        else:
            neck = key if anomaly is None else key * (1.0 + anomaly)
        maps["neck"] = neck
        return maps

    def forward_with_maps(self, clip: torch.Tensor) -> tuple[list[torch.Tensor], dict]:
        """`forward` plus the intermediate maps (`fused [B, T, C, h, w]`, the per-frame pyramid
        `levels` and those of `temporal`)."""
        levels = self.clip_levels(clip)
        fused = self.early_fusion(*self.fold(levels[:3])).unflatten(0, clip.shape[:2])
        maps = self.temporal(fused)
        maps["fused"] = fused
        # per-frame (P3, P4, P5) [B*T, C_l, H_l, W_l], for BP-FPN's DGR
        maps["levels"] = levels[:3]
        c2 = levels[3].unflatten(0, clip.shape[:2])[:, -1] if self.stride_four is not None else None
        return self.head_outputs(maps["neck"], c2), maps

    def loss(self, clip: torch.Tensor, targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Criterion terms plus BP-FPN's DGR term (`"dgr"`, option A) when configured."""
        outputs, maps = self.forward_with_maps(clip)
        return add_pyramid_losses(self.bpfpn, self.criterion(outputs, targets), maps["levels"])

    def forward(self, clip: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_maps(clip)[0]

    @torch.no_grad()
    def predict(
        self,
        clip: torch.Tensor,
        decode_floor: float = DECODE_FLOOR,
        nms_iou: float = 0.65,
        return_maps: bool = False,
    ) -> list[Detections]:
        """Detections of each key frame (boxes xyxy in input pixels; call `.eval()` first).

        With `return_maps`, each `Detections.maps` holds (at stride 8, `[h, w]` unless noted):
        `background`: L2 norm over channels of the key frame's predicted background (a feature
        map has no image intensity; its norm shows where the field puts structure);
        `background_residual`: `||F_key - B_key||_2` over channels; `appearance_anomaly`
        `[T, h, w]`: per-frame appearance anomaly; `anomaly`: the verified anomaly;
        `gate`: the amplifier H = where(A > tau, eta*A, 0.1*A). Maps that a configuration does
        not compute are absent.
        """
        outputs, maps = self.forward_with_maps(clip)
        outputs = [o.float() for o in outputs]  # fp32 decoding also under bf16 autocast
        detections = postprocess(self.decode(outputs), decode_floor=decode_floor, nms_iou=nms_iou)
        if not return_maps:
            return detections
        key = maps["fused"][:, -1]
        for i, det in enumerate(detections):
            frame_maps: dict[str, torch.Tensor] = {}
            if "background" in maps:
                background = maps["background"][i, -1]
                frame_maps["background"] = torch.linalg.vector_norm(background, dim=0)
                frame_maps["background_residual"] = torch.linalg.vector_norm(
                    key[i] - background, dim=0
                )
            if "appearance_anomaly" in maps:
                frame_maps["appearance_anomaly"] = maps["appearance_anomaly"][i, :, 0]
            for name in ("anomaly", "gate"):
                if name in maps:
                    frame_maps[name] = maps[name][i, 0]
            det.maps = frame_maps
        return detections

    def streaming_parts(self, fast_snf: bool = True) -> tuple[nn.Module, nn.Module]:
        """Per frame: backbone, pyramid, fold, early fusion and (`fast_snf`) the SNF's Conv3d
        taps; per window: the SNF, HAL, CRG and head (`mistd.models.detectors.chal_streaming`)."""
        from mistd.models.detectors.chal_streaming import chal_streaming_parts

        return chal_streaming_parts(self, fast_snf)


def _multiple_of_32(size: int) -> int:
    return max(32, -(-size // 32) * 32)


def freeze_parameters(module: nn.Module, names: tuple[str, ...]) -> list[str]:
    """Set `requires_grad=False` on parameters whose name ends with one of `names`; returns the
    full names frozen."""
    frozen = []
    for name, param in module.named_parameters():
        if name.endswith(names):
            param.requires_grad_(False)
            frozen.append(name)
    return frozen
